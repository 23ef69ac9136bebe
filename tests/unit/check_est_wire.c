/*
 * check_est_wire.c: unit tests of src/est/wire.c, base64 bodies in and out
 * and media-type matching.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "est/wire.h"

/* Size of the error buffers handed to the decoder. */
#define ERR_MAX 256

/* Longest test body the round trip builds. */
#define ROUND_TRIP_MAX 300

/* "Hello, EST!\n" followed by the bytes 0x00..0x3f, as base64 on one line. */
static const char sample_b64[] =
    "SGVsbG8sIEVTVCEKAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKi"
    "ssLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

/* Fills sample with the bytes sample_b64 encodes and returns its length. */
static size_t
sample_bytes(unsigned char *sample)
{
	size_t i, n;

	n = strlen("Hello, EST!\n");
	memcpy(sample, "Hello, EST!\n", n);
	for (i = 0; i < 0x40; i++)
		sample[n + i] = (unsigned char)i;
	return n + 0x40;
}

/*
 * Decodes in (a C string) and checks the result against the sample bytes.
 */
static void
assert_decodes_to_sample(const char *in, int armour)
{
	unsigned char want[128], *got;
	char err[ERR_MAX];
	size_t wantlen, gotlen;

	wantlen = sample_bytes(want);
	got = est_wire_base64_decode(in, strlen(in), armour, &gotlen, err,
	                             sizeof(err));
	ck_assert_msg(got != NULL, "decode failed: %s", err);
	ck_assert_uint_eq(gotlen, wantlen);
	ck_assert_mem_eq(got, want, wantlen);
	free(got);
}

/* Decodes in and checks that it fails with a reason containing why. */
static void
assert_decode_fails(const char *in, size_t inlen, int armour, const char *why)
{
	unsigned char *got;
	char err[ERR_MAX];
	size_t gotlen = 42;

	got = est_wire_base64_decode(in, inlen, armour, &gotlen, err,
	                             sizeof(err));
	ck_assert_ptr_null(got);
	ck_assert_uint_eq(gotlen, 0);
	ck_assert_msg(strstr(err, why) != NULL, "error \"%s\" lacks \"%s\"",
	              err, why);
}

/*
 * Returns a copy of the sample text with sep inserted every col characters
 * (free with free()).
 */
static char *
wrapped_sample(size_t col, const char *sep)
{
	size_t i, j, n, seplen;
	char *out;

	n = strlen(sample_b64);
	seplen = strlen(sep);
	out = malloc(n + (n / col + 1) * seplen + 1);
	ck_assert_ptr_nonnull(out);
	for (i = 0, j = 0; i < n; i++) {
		out[j++] = sample_b64[i];
		if ((i + 1) % col == 0 || i + 1 == n) {
			memcpy(out + j, sep, seplen);
			j += seplen;
		}
	}
	out[j] = '\0';
	return out;
}

START_TEST(test_wire_decode_single_line)
{
	assert_decodes_to_sample(sample_b64, 0);
	assert_decodes_to_sample(sample_b64, 1);
}
END_TEST

START_TEST(test_wire_decode_rfc4648_vectors)
{
	static const struct {
		const char *b64, *plain;
	} vec[] = {
	    {"Zg==", "f"},        {"Zm8=", "fo"},        {"Zm9v", "foo"},
	    {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
	};
	unsigned char *got;
	char err[ERR_MAX];
	size_t i, len;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		got = est_wire_base64_decode(vec[i].b64, strlen(vec[i].b64), 1,
		                             &len, err, sizeof(err));
		ck_assert_msg(got != NULL, "%s: %s", vec[i].b64, err);
		ck_assert_uint_eq(len, strlen(vec[i].plain));
		ck_assert_mem_eq(got, vec[i].plain, len);
		free(got);
	}
}
END_TEST

START_TEST(test_wire_decode_crlf_every_64_accepted)
{
	char *in;

	in = wrapped_sample(64, "\r\n");
	assert_decodes_to_sample(in, 0);
	free(in);
	in = wrapped_sample(64, "\n");
	assert_decodes_to_sample(in, 0);
	free(in);
}
END_TEST

START_TEST(test_wire_decode_spaces_and_tabs_accepted)
{
	char *in;

	in = wrapped_sample(64, " \t");
	assert_decodes_to_sample(in, 0);
	free(in);
	in = wrapped_sample(7, "\t \r\n ");
	assert_decodes_to_sample(in, 0);
	free(in);
	in = wrapped_sample(1, " ");
	assert_decodes_to_sample(in, 1);
	free(in);
}
END_TEST

START_TEST(test_wire_decode_pem_armour_accepted)
{
	char *body, in[1024];

	body = wrapped_sample(64, "\n");
	snprintf(in, sizeof(in),
	         "-----BEGIN CERTIFICATE REQUEST-----\n%s-----END CERTIFICATE "
	         "REQUEST-----\n",
	         body);
	assert_decodes_to_sample(in, 1);

	/* CRLF, leading and trailing whitespace, NEW prefix. */
	free(body);
	body = wrapped_sample(64, "\r\n");
	snprintf(in, sizeof(in),
	         "\r\n  -----BEGIN NEW CERTIFICATE REQUEST-----\r\n%s-----END "
	         "NEW CERTIFICATE REQUEST-----\r\n\r\n \t",
	         body);
	assert_decodes_to_sample(in, 1);

	/* Everything on one line, no final newline. */
	snprintf(in, sizeof(in), "-----BEGIN PKCS7-----%s-----END PKCS7-----",
	         sample_b64);
	assert_decodes_to_sample(in, 1);
	free(body);
}
END_TEST

START_TEST(test_wire_decode_pem_armour_refused_when_off)
{
	char in[1024];

	snprintf(in, sizeof(in),
	         "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END "
	         "CERTIFICATE REQUEST-----\n",
	         sample_b64);
	assert_decode_fails(in, strlen(in), 0, "byte 0x2d at offset 0");
}
END_TEST

START_TEST(test_wire_decode_pem_armour_broken_refused)
{
	char in[1024];

	snprintf(in, sizeof(in), "-----BEGIN CERTIFICATE REQUEST-----\n%s\n",
	         sample_b64);
	assert_decode_fails(in, strlen(in), 1, "no END line");

	snprintf(in, sizeof(in),
	         "-----BEGIN CERTIFICATE REQUEST\n%s\n-----END CERTIFICATE "
	         "REQUEST-----\n",
	         sample_b64);
	assert_decode_fails(in, strlen(in), 1, "BEGIN line at offset 0");

	snprintf(in, sizeof(in),
	         "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END "
	         "CERTIFICATE REQUEST\n",
	         sample_b64);
	assert_decode_fails(in, strlen(in), 1, "END line at offset");

	/* A second block after the first is not silently dropped. */
	snprintf(in, sizeof(in),
	         "-----BEGIN X-----\nZm9v\n-----END X-----\n-----BEGIN "
	         "X-----\nYmFy\n-----END X-----\n");
	assert_decode_fails(in, strlen(in), 1, "data after the END line");

	/* Text before the armour is not armour, and not base64 either. */
	snprintf(in, sizeof(in),
	         "csr:\n-----BEGIN X-----\nZm9v\n-----END X-----\n");
	assert_decode_fails(in, strlen(in), 1, "byte 0x3a at offset 3");

	/* Armour around nothing is an empty body. */
	snprintf(in, sizeof(in), "-----BEGIN X-----\n\n-----END X-----\n");
	assert_decode_fails(in, strlen(in), 1, "empty body");
}
END_TEST

START_TEST(test_wire_decode_missing_padding_accepted)
{
	char in[sizeof(sample_b64)];
	unsigned char *got;
	char err[ERR_MAX];
	size_t len;

	/* The sample ends in "==": drop both, then one. */
	memcpy(in, sample_b64, sizeof(sample_b64));
	in[strlen(in) - 2] = '\0';
	assert_decodes_to_sample(in, 0);
	memcpy(in, sample_b64, sizeof(sample_b64));
	in[strlen(in) - 1] = '\0';
	assert_decodes_to_sample(in, 0);

	/* One missing "=": "Zm8" is "fo". */
	got = est_wire_base64_decode("Zm8", 3, 0, &len, err, sizeof(err));
	ck_assert_msg(got != NULL, "%s", err);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(got, "fo", 2);
	free(got);

	/* Missing padding followed by whitespace. */
	got = est_wire_base64_decode("Zg\r\n", 4, 1, &len, err, sizeof(err));
	ck_assert_msg(got != NULL, "%s", err);
	ck_assert_uint_eq(len, 1);
	ck_assert_mem_eq(got, "f", 1);
	free(got);
}
END_TEST

START_TEST(test_wire_decode_too_much_padding_refused)
{
	assert_decode_fails("Zm9v=", 5, 0, "padding");
	assert_decode_fails("Zg===", 5, 0, "padding");
	assert_decode_fails("Zm8==", 5, 0, "padding");
}
END_TEST

START_TEST(test_wire_decode_data_after_padding_refused)
{
	/* Two bodies glued together: "Zg==" then "Zm8=". */
	assert_decode_fails("Zg==Zm8=", 8, 0, "data after padding at offset 4");
	assert_decode_fails("Zg=\n=Zm8=", 9, 0,
	                    "data after padding at offset 5");
}
END_TEST

START_TEST(test_wire_decode_bad_byte_names_offset)
{
	static const char nul_in[] = "Zm9v\0mFy";

	assert_decode_fails("Zm9vYmFy*Zm9v", 13, 1,
	                    "invalid base64: byte 0x2a at offset 8");
	/* URL-safe alphabet is not RFC 4648 §4. */
	assert_decode_fails("Zm9-", 4, 0, "byte 0x2d at offset 3");
	assert_decode_fails("Zm9_", 4, 1, "byte 0x5f at offset 3");
	/* Only CR, LF, SP and HTAB are whitespace. */
	assert_decode_fails("Zm9v\vYmFy", 9, 0, "byte 0x0b at offset 4");
	assert_decode_fails("Zm9v\fYmFy", 9, 0, "byte 0x0c at offset 4");
	assert_decode_fails(nul_in, sizeof(nul_in) - 1, 0,
	                    "byte 0x00 at offset 4");
	assert_decode_fails("Zm9v\xc3\xa9", 6, 0, "byte 0xc3 at offset 4");
}
END_TEST

START_TEST(test_wire_decode_length_1_mod_4_refused)
{
	assert_decode_fails("Z", 1, 0, "one more than a multiple of 4");
	assert_decode_fails("Zm9vY", 5, 0, "5 characters");
	assert_decode_fails("Zm9v\r\nY\r\n", 9, 1, "5 characters");
	assert_decode_fails("Zm9vY=", 6, 0, "one more than a multiple of 4");
}
END_TEST

START_TEST(test_wire_decode_empty_refused)
{
	assert_decode_fails("", 0, 1, "empty body");
	assert_decode_fails(NULL, 0, 1, "empty body");
	assert_decode_fails(" \r\n\t", 4, 1, "empty body");
	assert_decode_fails("==", 2, 0, "empty body");
}
END_TEST

START_TEST(test_wire_decode_without_err_buffer)
{
	unsigned char *got;
	size_t len;

	got = est_wire_base64_decode("*", 1, 1, &len, NULL, 0);
	ck_assert_ptr_null(got);
	got = est_wire_base64_decode("Zm9v", 4, 1, &len, NULL, 0);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, 3);
	free(got);
}
END_TEST

START_TEST(test_wire_encode_wrap_0_single_line)
{
	unsigned char in[128];
	size_t inlen, len;
	char *out;

	inlen = sample_bytes(in);
	out = est_wire_base64_encode(in, inlen, 0, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, sample_b64);
	ck_assert_uint_eq(len, strlen(sample_b64));
	ck_assert_ptr_null(strchr(out, '\n'));
	ck_assert_ptr_null(strchr(out, '\r'));
	free(out);

	/* RFC 4648 §10. */
	out =
	    est_wire_base64_encode((const unsigned char *)"fooba", 5, 0, &len);
	ck_assert_str_eq(out, "Zm9vYmE=");
	ck_assert_uint_eq(len, 8);
	free(out);
}
END_TEST

/*
 * Checks that out is flat cut into lines of exactly wrap characters, the
 * last one shorter or equal, each ended by LF, with nothing else in it.
 */
static void
assert_wrapped(const char *out, size_t len, const char *flat, int wrap)
{
	size_t i, col, j;

	ck_assert_uint_eq(len, strlen(out));
	ck_assert_msg(len > 0 && out[len - 1] == '\n', "no final LF");
	ck_assert_ptr_null(strchr(out, '\r'));
	for (i = 0, j = 0, col = 0; i < len; i++) {
		if (out[i] == '\n') {
			ck_assert_msg(col > 0, "empty line at %zu", i);
			ck_assert_msg(col == (size_t)wrap || i + 1 == len,
			              "short line ending at %zu", i);
			col = 0;
			continue;
		}
		col++;
		ck_assert_msg(col <= (size_t)wrap, "line too long at %zu", i);
		ck_assert_int_eq(out[i], flat[j]);
		j++;
	}
	ck_assert_uint_eq(j, strlen(flat));
}

START_TEST(test_wire_encode_wrap_64)
{
	unsigned char in[300];
	size_t i, len;
	char *out;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7);
	for (i = 1; i <= sizeof(in); i++) {
		char *flat;
		size_t flatlen;

		flat = est_wire_base64_encode(in, i, 0, &flatlen);
		out = est_wire_base64_encode(in, i, 64, &len);
		ck_assert_ptr_nonnull(flat);
		ck_assert_ptr_nonnull(out);
		assert_wrapped(out, len, flat, 64);
		free(flat);
		free(out);
	}
}
END_TEST

START_TEST(test_wire_encode_wrap_76)
{
	unsigned char in[300];
	size_t i, len;
	char *out;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(255 - i);
	for (i = 1; i <= sizeof(in); i++) {
		char *flat;
		size_t flatlen;

		flat = est_wire_base64_encode(in, i, 0, &flatlen);
		out = est_wire_base64_encode(in, i, 76, &len);
		ck_assert_ptr_nonnull(flat);
		ck_assert_ptr_nonnull(out);
		assert_wrapped(out, len, flat, 76);
		free(flat);
		free(out);
	}

	/* 57 bytes are exactly one 76-column line. */
	out = est_wire_base64_encode(in, 57, 76, &len);
	ck_assert_uint_eq(len, 77);
	ck_assert_ptr_eq(strchr(out, '\n'), out + 76);
	free(out);
}
END_TEST

START_TEST(test_wire_encode_empty)
{
	size_t len = 42;
	char *out;

	out = est_wire_base64_encode(NULL, 0, 0, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(len, 0);
	free(out);
	out = est_wire_base64_encode((const unsigned char *)"", 0, 64, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(len, 0);
	free(out);
	ck_assert_ptr_null(est_wire_base64_encode(NULL, 3, 0, &len));
}
END_TEST

/* A small deterministic generator, so that failures reproduce. */
static uint32_t
next_random(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

START_TEST(test_wire_round_trip_random_lengths)
{
	static const int wraps[] = {0, 64, 76};
	unsigned char in[ROUND_TRIP_MAX], *back;
	uint32_t state = 0x9e3779b9u;
	char err[ERR_MAX], *enc, *pem;
	size_t n, i, w, enclen, backlen, pemlen;

	for (n = 0; n <= ROUND_TRIP_MAX; n++) {
		for (i = 0; i < n; i++)
			in[i] = (unsigned char)next_random(&state);
		for (w = 0; w < sizeof(wraps) / sizeof(wraps[0]); w++) {
			enc = est_wire_base64_encode(in, n, wraps[w], &enclen);
			ck_assert_ptr_nonnull(enc);
			ck_assert_uint_eq(enclen, strlen(enc));
			if (n == 0) {
				ck_assert_uint_eq(enclen, 0);
				free(enc);
				continue;
			}
			back = est_wire_base64_decode(enc, enclen, 0, &backlen,
			                              err, sizeof(err));
			ck_assert_msg(back != NULL, "n=%zu wrap=%d: %s", n,
			              wraps[w], err);
			ck_assert_uint_eq(backlen, n);
			ck_assert_mem_eq(back, in, n);
			free(back);

			/* The same inside PEM armour. */
			pemlen = enclen + 64;
			pem = malloc(pemlen);
			ck_assert_ptr_nonnull(pem);
			snprintf(pem, pemlen,
			         "-----BEGIN X-----\n%s\n-----END X-----\n",
			         enc);
			back = est_wire_base64_decode(
			    pem, strlen(pem), 1, &backlen, err, sizeof(err));
			ck_assert_msg(back != NULL, "pem n=%zu: %s", n, err);
			ck_assert_uint_eq(backlen, n);
			ck_assert_mem_eq(back, in, n);
			free(back);
			free(pem);

			/* And with the padding stripped. */
			while (enclen > 0 && (enc[enclen - 1] == '\n' ||
			                      enc[enclen - 1] == '='))
				enclen--;
			back = est_wire_base64_decode(enc, enclen, 0, &backlen,
			                              err, sizeof(err));
			ck_assert_msg(back != NULL, "unpadded n=%zu: %s", n,
			              err);
			ck_assert_uint_eq(backlen, n);
			ck_assert_mem_eq(back, in, n);
			free(back);
			free(enc);
		}
	}
}
END_TEST

START_TEST(test_wire_media_type_params_and_case)
{
	ck_assert_int_eq(
	    est_wire_media_type_is("application/pkcs10", EST_TYPE_PKCS10), 1);
	ck_assert_int_eq(est_wire_media_type_is("Application/PKCS10; charset=x",
	                                        EST_TYPE_PKCS10),
	                 1);
	ck_assert_int_eq(est_wire_media_type_is("  application/pkcs10 ;x=y",
	                                        EST_TYPE_PKCS10),
	                 1);
	ck_assert_int_eq(
	    est_wire_media_type_is("\tapplication/pkcs10\t", EST_TYPE_PKCS10),
	    1);
	ck_assert_int_eq(est_wire_media_type_is(
	                     "APPLICATION/PKCS7-MIME; smime-type=CMC-request",
	                     "application/pkcs7-mime"),
	                 1);
	ck_assert_int_eq(
	    est_wire_media_type_is("text/plain;charset=utf-8", EST_TYPE_TEXT),
	    1);
}
END_TEST

START_TEST(test_wire_media_type_mismatch)
{
	ck_assert_int_eq(est_wire_media_type_is(NULL, EST_TYPE_PKCS10), 0);
	ck_assert_int_eq(est_wire_media_type_is("", EST_TYPE_PKCS10), 0);
	ck_assert_int_eq(
	    est_wire_media_type_is(" ; charset=x", EST_TYPE_PKCS10), 0);
	ck_assert_int_eq(
	    est_wire_media_type_is("application/pkcs10x", EST_TYPE_PKCS10), 0);
	ck_assert_int_eq(
	    est_wire_media_type_is("application/pkcs1", EST_TYPE_PKCS10), 0);
	ck_assert_int_eq(
	    est_wire_media_type_is("application/ pkcs10", EST_TYPE_PKCS10), 0);
	ck_assert_int_eq(
	    est_wire_media_type_is("application/octet-stream", EST_TYPE_PKCS10),
	    0);
	ck_assert_int_eq(est_wire_media_type_is("application/pkcs10", NULL), 0);
	ck_assert_int_eq(est_wire_media_type_is("application/pkcs10", ""), 0);
}
END_TEST

static Suite *
wire_suite(void)
{
	Suite *s;
	TCase *tc;

	s = suite_create("est_wire");
	tc = tcase_create("decode");
	tcase_add_test(tc, test_wire_decode_single_line);
	tcase_add_test(tc, test_wire_decode_rfc4648_vectors);
	tcase_add_test(tc, test_wire_decode_crlf_every_64_accepted);
	tcase_add_test(tc, test_wire_decode_spaces_and_tabs_accepted);
	tcase_add_test(tc, test_wire_decode_pem_armour_accepted);
	tcase_add_test(tc, test_wire_decode_pem_armour_refused_when_off);
	tcase_add_test(tc, test_wire_decode_pem_armour_broken_refused);
	tcase_add_test(tc, test_wire_decode_missing_padding_accepted);
	tcase_add_test(tc, test_wire_decode_too_much_padding_refused);
	tcase_add_test(tc, test_wire_decode_data_after_padding_refused);
	tcase_add_test(tc, test_wire_decode_bad_byte_names_offset);
	tcase_add_test(tc, test_wire_decode_length_1_mod_4_refused);
	tcase_add_test(tc, test_wire_decode_empty_refused);
	tcase_add_test(tc, test_wire_decode_without_err_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_test(tc, test_wire_encode_wrap_0_single_line);
	tcase_add_test(tc, test_wire_encode_wrap_64);
	tcase_add_test(tc, test_wire_encode_wrap_76);
	tcase_add_test(tc, test_wire_encode_empty);
	tcase_add_test(tc, test_wire_round_trip_random_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("media_type");
	tcase_add_test(tc, test_wire_media_type_params_and_case);
	tcase_add_test(tc, test_wire_media_type_mismatch);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(wire_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
