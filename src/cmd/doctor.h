/*
 * doctor.h: estrad --doctor.  Loads the configuration as -t does, then
 * checks what the first enrollment of every label would need: files and
 * their modes, the server certificate, key and chain, trust stores, the
 * clock, and each label's CA backend through its health and cacerts
 * operations (which never enroll and change nothing on a CA).  Prints one
 * line per check: ok, warn or FAIL, the subject, the cause and the remedy.
 */
#ifndef ESTRAD_CMD_DOCTOR_H
#define ESTRAD_CMD_DOCTOR_H

#include <stdio.h>

/*
 * Runs every check of config_path and prints the lines to out (borrowed),
 * as text, or with json set as one JSON array of {status, subject, check,
 * cause, remedy}.  Installs its own CA log hook for the run.  Returns the
 * exit status: 0 when no check failed, 1 otherwise.
 */
int est_doctor_run(const char *config_path, int json, FILE *out);

#endif
