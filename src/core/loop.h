/*
 * loop.h: event priorities of a worker's event loop, shared by the layers
 * that schedule work on it.
 */
#ifndef ESTRAD_CORE_LOOP_H
#define ESTRAD_CORE_LOOP_H

/*
 * Event priorities of a worker's loop (the listener sets up two).  Work
 * for requests already under way (their connections once the TLS handshake
 * is done, CA call completions, answers waiting for the audit log) runs
 * before new TLS handshakes, so that a burst of new clients does not stall
 * the answers of those already being served.  On a loop with one priority
 * (unit tests, --doctor) setting them fails harmlessly.
 */
#define CORE_LOOP_PRIORITY_ONGOING 0
#define CORE_LOOP_PRIORITY_NEW     1
#define CORE_LOOP_PRIORITIES       2

#endif
