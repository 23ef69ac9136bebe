/*
 * check_ra_pending.c: pending-request records, their keys, the strict
 * record reader and the default (state directory) store.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/log.h"
#include "ra/log.h"
#include "ra/pending.h"

static char dir[] = "/tmp/check_ra_pending.XXXXXX";
static struct ra_pending *store;

/* Opens a store on path with the given bounds, as the current user. */
static struct ra_pending *
open_store(const char *path, unsigned int max_records,
           unsigned int max_per_identity, char *err, size_t errlen)
{
	struct ra_pending_params params = {3600, max_records, max_per_identity,
	                                   geteuid()};

	return ra_pending_open_dir(path, &params, err, errlen);
}

static void
setup(void)
{
	char err[512];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	store = open_store(dir, RA_PENDING_MAX_RECORDS,
	                   RA_PENDING_MAX_PER_IDENTITY, err, sizeof(err));
	ck_assert_msg(store != NULL, "%s", err);
}

static void
teardown(void)
{
	char cmd[300];

	ra_pending_close(store);
	store = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

/* A signed CSR with a fresh P-256 key (free with X509_REQ_free). */
static X509_REQ *
make_csr(EVP_PKEY **keep)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();

	ck_assert_ptr_nonnull(pkey);
	ck_assert_int_eq(X509_REQ_set_pubkey(req, pkey), 1);
	ck_assert_int_gt(X509_REQ_sign(req, pkey, EVP_sha256()), 0);
	if (keep != NULL)
		*keep = pkey;
	else
		EVP_PKEY_free(pkey);
	return req;
}

static void
fill(struct ra_pending_record *r, const char *key)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->key, sizeof(r->key), "%s", key);
	r->state = RA_PENDING_AT_CA;
	snprintf(r->label, sizeof(r->label), "phones");
	snprintf(r->identity, sizeof(r->identity), "CN=SEP001122334455");
	snprintf(r->first_rid, sizeof(r->first_rid), "0123456789abcdef");
	snprintf(r->cookie, sizeof(r->cookie), "61108");
	r->retry_after = 60;
	r->pid = 42;
	r->created = time(NULL);
	r->expires = r->created + 3600;
}

START_TEST(test_pending_key_follows_public_key_not_body)
{
	char k1[RA_PENDING_KEY_MAX], k2[RA_PENDING_KEY_MAX];
	char k3[RA_PENDING_KEY_MAX], k4[RA_PENDING_KEY_MAX];
	EVP_PKEY *pkey;
	X509_REQ *a = make_csr(&pkey), *b = X509_REQ_new(), *c;

	/* The same key in a CSR signed again (a new TLS session's
	 * challengePassword would change the body) gives the same key. */
	ck_assert_int_eq(X509_REQ_set_pubkey(b, pkey), 1);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(b), "CN",
	                           MBSTRING_ASC, (unsigned char *)"x", -1, -1,
	                           0);
	ck_assert_int_gt(X509_REQ_sign(b, pkey, EVP_sha256()), 0);
	c = make_csr(NULL);
	ck_assert_int_eq(ra_pending_key("phones", "alice", a, k1), 0);
	ck_assert_int_eq(ra_pending_key("phones", "alice", b, k2), 0);
	ck_assert_int_eq(ra_pending_key("phones", "bob", a, k3), 0);
	ck_assert_int_eq(ra_pending_key("phones", "alice", c, k4), 0);
	ck_assert_str_eq(k1, k2);
	ck_assert_str_ne(k1, k3);
	ck_assert_str_ne(k1, k4);
	ck_assert_uint_eq(strlen(k1), 64);
	X509_REQ_free(a);
	X509_REQ_free(b);
	X509_REQ_free(c);
	EVP_PKEY_free(pkey);
}
END_TEST

START_TEST(test_pending_put_get_remove_round_trip)
{
	struct ra_pending_record in, out;
	char key[RA_PENDING_KEY_MAX], err[256];
	X509_REQ *csr = make_csr(NULL);

	ck_assert_int_eq(ra_pending_key("phones", "alice", csr, key), 0);
	fill(&in, key);
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)), 0);
	ck_assert_int_eq(store->ops->get(store, key, &out, err, sizeof(err)),
	                 1);
	ck_assert_str_eq(out.cookie, "61108");
	ck_assert_str_eq(out.identity, "CN=SEP001122334455");
	ck_assert_int_eq(out.state, RA_PENDING_AT_CA);
	ck_assert_int_eq(out.expires, in.expires);
	ra_pending_record_cleanup(&out);
	ck_assert_int_eq(store->ops->remove(store, key, err, sizeof(err)), 0);
	ck_assert_int_eq(store->ops->get(store, key, &out, err, sizeof(err)),
	                 0);
	/* Removing what is gone is no error. */
	ck_assert_int_eq(store->ops->remove(store, key, err, sizeof(err)), 0);
	X509_REQ_free(csr);
}
END_TEST

START_TEST(test_pending_issued_record_keeps_certificates)
{
	struct ra_pending_record in, out;
	STACK_OF(X509) *certs = sk_X509_new_null(), *back;
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	char err[256];

	X509_set_pubkey(cert, pkey);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 60);
	ck_assert_int_gt(X509_sign(cert, pkey, EVP_sha256()), 0);
	sk_X509_push(certs, cert);
	fill(
	    &in,
	    "00000000000000000000000000000000000000000000000000000000000000aa");
	in.state = RA_PENDING_ISSUED;
	in.certs_pem = ra_pending_certs_to_pem(certs);
	ck_assert_ptr_nonnull(in.certs_pem);
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)), 0);
	ck_assert_int_eq(store->ops->get(store, in.key, &out, err, sizeof(err)),
	                 1);
	back = ra_pending_certs_from_pem(out.certs_pem);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(sk_X509_num(back), 1);
	ck_assert_int_eq(X509_cmp(sk_X509_value(back, 0), cert), 0);
	sk_X509_pop_free(back, X509_free);
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(pkey);
	ra_pending_record_cleanup(&in);
	ra_pending_record_cleanup(&out);
}
END_TEST

START_TEST(test_pending_write_is_atomic_file_with_private_mode)
{
	struct ra_pending_record in;
	char path[400], err[256];
	struct stat st;

	fill(
	    &in,
	    "00000000000000000000000000000000000000000000000000000000000000bb");
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/%s.json", dir, in.key);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* No temporary file is left behind. */
	snprintf(path, sizeof(path), "ls -A %s | grep -q tmp", dir);
	ck_assert_int_ne(system(path), 0);
}
END_TEST

START_TEST(test_pending_parse_is_strict)
{
	struct ra_pending_record r;
	char err[256];
	const char *bad[] = {
	    "",
	    "[]",
	    "{\"key\":\"ab\"}",
	    "{\"key\":\"ab\",\"state\":\"nosuch\"}",
	    "{\"key\":\"ab\",\"state\":\"at_ca\",\"extra\":1}",
	    "{\"key\":\"ab\",\"state\":\"at_ca\",\"status\":\"403\"}",
	    "{\"key\":\"ab\",\"state\":\"at_ca\",\"retry_after\":-1}",
	    "{\"key\":\"ab\",\"state\":\"issued\"}",
	    "{\"key\":\"ab\",\"state\":\"at_ca\",\"key\":\"cd\"}",
	};
	const char *good = "{\"key\":\"ab\",\"state\":\"rejected\","
	                   "\"status\":403,\"reason\":\"denied\"}";
	char longlabel[300];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ra_pending_record_parse(bad[i], strlen(bad[i]),
		                                      &r, err,
		                                      sizeof(err)) != 0,
		              "accepted %s", bad[i]);
	memset(longlabel, 'x', sizeof(longlabel));
	snprintf(longlabel, sizeof(longlabel),
	         "{\"key\":\"ab\",\"state\":\"at_ca\",\"label\":\"%0200d\"}",
	         1);
	ck_assert_int_ne(ra_pending_record_parse(longlabel, strlen(longlabel),
	                                         &r, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(
	    ra_pending_record_parse(good, strlen(good), &r, err, sizeof(err)),
	    0);
	ck_assert_str_eq(r.reason, "denied");
	ra_pending_record_cleanup(&r);
}
END_TEST

START_TEST(test_pending_bad_key_never_touches_files)
{
	struct ra_pending_record r;
	char err[256];

	fill(&r, "../../etc/passwd");
	ck_assert_int_ne(store->ops->put(store, &r, err, sizeof(err)), 0);
	ck_assert_int_lt(store->ops->get(store, "../x", &r, err, sizeof(err)),
	                 0);
}
END_TEST

START_TEST(test_pending_expire_removes_only_old_records)
{
	struct ra_pending_record a, b, out;
	char err[256];

	ra_log_open(NULL, NULL, NULL, CORE_LOG_EMERG, err, sizeof(err));
	fill(
	    &a,
	    "00000000000000000000000000000000000000000000000000000000000000a1");
	fill(
	    &b,
	    "00000000000000000000000000000000000000000000000000000000000000b2");
	a.expires = time(NULL) - 10;
	ck_assert_int_eq(store->ops->put(store, &a, err, sizeof(err)), 0);
	ck_assert_int_eq(store->ops->put(store, &b, err, sizeof(err)), 0);
	ck_assert_int_eq(
	    store->ops->expire(store, time(NULL), err, sizeof(err)), 1);
	ck_assert_int_eq(store->ops->get(store, a.key, &out, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(store->ops->get(store, b.key, &out, err, sizeof(err)),
	                 1);
	ra_pending_record_cleanup(&out);
}
END_TEST

START_TEST(test_pending_open_refuses_unwritable_dir)
{
	char err[256];

	ck_assert_ptr_null(open_store("/proc/nope", 10, 10, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "/proc/nope"));
}
END_TEST

/* Writes text to path (created or truncated). */
static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

/* Reads at most len - 1 bytes of path into buf. */
static void
read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

START_TEST(test_pending_put_never_follows_planted_link)
{
	struct ra_pending_record in;
	char victim[] = "/tmp/check_ra_pending_victim.XXXXXX";
	char link[400], text[64], err[256];
	int fd;

	ck_assert_int_ge(fd = mkstemp(victim), 0);
	close(fd);
	write_file(victim, "precious\n");
	fill(
	    &in,
	    "00000000000000000000000000000000000000000000000000000000000000cc");
	/* The temporary name the store used to pick: the key and the pid,
	 * both known to anyone who can compute a key. */
	snprintf(link, sizeof(link), "%s/.%s.%ld.tmp", dir, in.key,
	         (long)getpid());
	ck_assert_int_eq(symlink(victim, link), 0);
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)), 0);
	read_file(victim, text, sizeof(text));
	unlink(victim);
	ck_assert_str_eq(text, "precious\n");
}
END_TEST

START_TEST(test_pending_get_refuses_link_and_fifo)
{
	struct ra_pending_record in, out;
	char outside[] = "/tmp/check_ra_pending_outside.XXXXXX";
	char path[400], err[256], *text;
	int fd;

	fill(
	    &in,
	    "00000000000000000000000000000000000000000000000000000000000000dd");
	ck_assert_ptr_nonnull(text = ra_pending_record_format(&in));
	ck_assert_int_ge(fd = mkstemp(outside), 0);
	close(fd);
	write_file(outside, text);
	free(text);
	/* A record that is a link to a file elsewhere is not read. */
	snprintf(path, sizeof(path), "%s/%s.json", dir, in.key);
	ck_assert_int_eq(symlink(outside, path), 0);
	ck_assert_int_eq(store->ops->get(store, in.key, &out, err, sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, in.key));
	unlink(outside);
	/* Nor is a FIFO, and reading it does not block. */
	fill(
	    &in,
	    "00000000000000000000000000000000000000000000000000000000000000de");
	snprintf(path, sizeof(path), "%s/%s.json", dir, in.key);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(store->ops->get(store, in.key, &out, err, sizeof(err)),
	                 -1);
}
END_TEST

START_TEST(test_pending_open_refuses_unsafe_dir)
{
	struct ra_pending *again;
	char err[512];
	const mode_t unsafe[] = {0777, 01777, 0770, 0720};
	size_t i;

	/* Group- or world-writable, even with the sticky bit: another user
	 * could plant links. */
	for (i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
		ck_assert_int_eq(chmod(dir, unsafe[i]), 0);
		ck_assert_ptr_null(open_store(dir, 10, 10, err, sizeof(err)));
		ck_assert_ptr_nonnull(strstr(err, dir));
		ck_assert_msg(strstr(err, "group- or world-writable") != NULL,
		              "%s", err);
	}
	ck_assert_int_eq(chmod(dir, 0700), 0);
	again = open_store(dir, 10, 10, err, sizeof(err));
	ck_assert_msg(again != NULL, "%s", err);
	ra_pending_close(again);
	/* Owned by someone else (only root can give it away). */
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(dir, 65534, 65534), 0);
		ck_assert_ptr_null(open_store(dir, 10, 10, err, sizeof(err)));
		ck_assert_msg(strstr(err, "owned by uid 65534") != NULL, "%s",
		              err);
		/* Root's directory is fine for root, not for a user it
		 * cannot write as. */
		ck_assert_int_eq(chown(dir, 0, 0), 0);
		{
			struct ra_pending_params p = {60, 10, 10, 65534};

			ck_assert_ptr_null(
			    ra_pending_open_dir(dir, &p, err, sizeof(err)));
			ck_assert_msg(strstr(err, "uid 65534") != NULL, "%s",
			              err);
		}
	}
}
END_TEST

/* Fills r as record number i of identity. */
static void
fill_nth(struct ra_pending_record *r, const char *identity, unsigned int i)
{
	fill(
	    r,
	    "0000000000000000000000000000000000000000000000000000000000000000");
	snprintf(r->key + 56, 9, "%08x", i);
	snprintf(r->identity, sizeof(r->identity), "%s", identity);
}

START_TEST(test_pending_bounds_refuse_new_records)
{
	struct ra_pending_record in, out;
	struct ra_pending *small;
	char err[512];
	unsigned int i;

	ra_pending_close(store);
	store = NULL;
	small = open_store(dir, 5, 3, err, sizeof(err));
	ck_assert_msg(small != NULL, "%s", err);
	/* Three of alice's, then the fourth is refused for her bound. */
	for (i = 0; i < 3; i++) {
		fill_nth(&in, "alice", i);
		ck_assert_int_eq(small->ops->put(small, &in, err, sizeof(err)),
		                 0);
	}
	fill_nth(&in, "alice", 3);
	ck_assert_int_eq(small->ops->put(small, &in, err, sizeof(err)),
	                 RA_PENDING_FULL);
	ck_assert_msg(strstr(err, "pending.max_per_identity 3") != NULL, "%s",
	              err);
	ck_assert_int_eq(small->ops->get(small, in.key, &out, err, sizeof(err)),
	                 0);
	/* A record written again (its state changed) is no new one. */
	fill_nth(&in, "alice", 1);
	in.state = RA_PENDING_REJECTED;
	ck_assert_int_eq(small->ops->put(small, &in, err, sizeof(err)), 0);
	/* Two of bob's fill the store; carol's is refused for the total. */
	for (i = 10; i < 12; i++) {
		fill_nth(&in, "bob", i);
		ck_assert_int_eq(small->ops->put(small, &in, err, sizeof(err)),
		                 0);
	}
	fill_nth(&in, "carol", 20);
	ck_assert_int_eq(small->ops->put(small, &in, err, sizeof(err)),
	                 RA_PENDING_FULL);
	ck_assert_msg(strstr(err, "pending.max_records 5") != NULL, "%s", err);
	/* A record collected makes room. */
	fill_nth(&out, "alice", 0);
	ck_assert_int_eq(small->ops->remove(small, out.key, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(small->ops->put(small, &in, err, sizeof(err)), 0);
	ck_assert_int_eq(small->ops->put(small, &in, err, sizeof(err)), 0);
	/* The count survives a new store on the same directory (a reload
	 * shares the index) and a restart (the index is read again). */
	store = open_store(dir, 5, 3, err, sizeof(err));
	ck_assert_msg(store != NULL, "%s", err);
	fill_nth(&in, "dave", 30);
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)),
	                 RA_PENDING_FULL);
	ra_pending_close(small);
	ra_pending_close(store);
	store = open_store(dir, 5, 3, err, sizeof(err));
	ck_assert_msg(store != NULL, "%s", err);
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)),
	                 RA_PENDING_FULL);
	fill_nth(&in, "alice", 2);
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_pending_expire_work_is_bounded)
{
	struct ra_pending_record in, out;
	char err[512], name[32], path[400], *text;
	unsigned int i, total = 3 * RA_PENDING_EXPIRE_SCAN, expired = 0;
	int n, removed = 0, calls = 0;

	ra_log_open(NULL, NULL, NULL, CORE_LOG_EMERG, err, sizeof(err));
	/* Many records, every tenth one expired, written as a store of an
	 * earlier run left them (put would fsync each), then read by a
	 * store opened afterwards. */
	ra_pending_close(store);
	store = NULL;
	for (i = 0; i < total; i++) {
		snprintf(name, sizeof(name), "CN=%u", i);
		fill_nth(&in, name, i);
		if (i % 10 == 0) {
			in.expires = time(NULL) - 10;
			expired++;
		}
		ck_assert_ptr_nonnull(text = ra_pending_record_format(&in));
		snprintf(path, sizeof(path), "%s/%s.json", dir, in.key);
		write_file(path, text);
		free(text);
	}
	store = open_store(dir, RA_PENDING_MAX_RECORDS,
	                   RA_PENDING_MAX_PER_IDENTITY, err, sizeof(err));
	ck_assert_msg(store != NULL, "%s", err);
	/* Each call looks at a bounded number of records and goes on
	 * where the last one stopped, until all expired ones are gone. */
	while (removed < (int)expired && calls < 1000) {
		n = store->ops->expire(store, time(NULL), err, sizeof(err));
		ck_assert_int_ge(n, 0);
		ck_assert_int_le(n, RA_PENDING_EXPIRE_REMOVE);
		ck_assert_uint_gt(ra_pending_dir_examined(store), 0);
		ck_assert_uint_le(ra_pending_dir_examined(store),
		                  RA_PENDING_EXPIRE_SCAN);
		removed += n;
		calls++;
	}
	ck_assert_int_eq(removed, (int)expired);
	ck_assert_int_ge(calls, (int)(expired / RA_PENDING_EXPIRE_REMOVE));
	snprintf(path, sizeof(path), "ls %s | grep -c json | grep -qx %u", dir,
	         total - expired);
	ck_assert_int_eq(system(path), 0);
	/* A record past its lifetime is gone even before the scan comes
	 * by. */
	fill_nth(&in, "late", total);
	in.expires = time(NULL) - 1;
	ck_assert_int_eq(store->ops->put(store, &in, err, sizeof(err)), 0);
	ck_assert_int_eq(store->ops->get(store, in.key, &out, err, sizeof(err)),
	                 0);
	snprintf(path, sizeof(path), "%s/%s.json", dir, in.key);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

static Suite *
ra_pending_suite(void)
{
	Suite *s = suite_create("ra_pending");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pending_key_follows_public_key_not_body);
	tcase_add_test(tc, test_pending_put_get_remove_round_trip);
	tcase_add_test(tc, test_pending_issued_record_keeps_certificates);
	tcase_add_test(tc, test_pending_write_is_atomic_file_with_private_mode);
	tcase_add_test(tc, test_pending_parse_is_strict);
	tcase_add_test(tc, test_pending_bad_key_never_touches_files);
	tcase_add_test(tc, test_pending_expire_removes_only_old_records);
	tcase_add_test(tc, test_pending_open_refuses_unwritable_dir);
	tcase_add_test(tc, test_pending_put_never_follows_planted_link);
	tcase_add_test(tc, test_pending_get_refuses_link_and_fifo);
	tcase_add_test(tc, test_pending_open_refuses_unsafe_dir);
	tcase_add_test(tc, test_pending_bounds_refuse_new_records);
	tcase_add_test(tc, test_pending_expire_work_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ra_pending_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
