/*
 * check_ca_certsrv_page.c: unit tests of the certsrv page parser.  The
 * pages follow what AD CS serves: CRLF line ends, the two-TAB status layout,
 * English and a German variant that translates every visible text but keeps
 * ids, URLs and numbers.  Every page is also parsed from a heap copy of exactly
 * its length, so ASan catches any read past the end.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_plugins/certsrv_page.h"

#define HEAD(title)                                                            \
	"<HTML>\r\n<Head>\r\n\t<Meta HTTP-Equiv=\"Content-Type\" "             \
	"Content=\"text/html; charset=UTF-8\">\r\n"                            \
	"\t<Title>Microsoft Active Directory Certificate Services</Title>\r\n" \
	"</Head>\r\n<Body BgColor=#FFFFFF>\r\n"                                \
	"<LocID ID=locMSCertSrv>Microsoft Active Directory Certificate "       \
	"Services &nbsp;--&nbsp; Fake CA</LocID>\r\n"                          \
	"<P ID=locPageTitle> <B> " title " </B>\r\n"

#define TAIL "</Body>\r\n</HTML>\r\n"

/* The error layout of §3, one label per value, values after two TABs. */
#define STATUS(disp, msg, result, last)                                        \
	"<P ID=locContactAdmin>Contact your administrator for further "        \
	"assistance.\r\n</P>\r\n<DL><DD>\r\n\t<DL>\r\n"                        \
	"\t<DT ID=locModeLabel><Font Size=-1><B>Request Mode:</B></Font>"      \
	"</DT><DD>\r\n"                                                        \
	"\t\t <LocID ID=locModeSpacer>-</LocID> <LocID "                       \
	"ID=locModeCertFetch>(certnew.cer/certnew.p7b/certcrl.crl "            \
	"certificate/crl fetch)</LocID>\r\n\t</DD>\r\n"                        \
	"\t<DT ID=locDispLabel><Font Size=-1><B>Disposition:</B></Font>"       \
	"</DT><DD>\r\n"                                                        \
	"\t\t" disp " <LocID ID=locDispSpacer>-</LocID> <LocID "               \
	"ID=locDispUnknown>(unknown)</LocID>\r\n\t</DD>\r\n"                   \
	"\t<DT ID=locDispMsgLabel><Font Size=-1><B>Disposition "               \
	"message:</B></Font></DT><DD>\r\n"                                     \
	"\t\t" msg "\r\n\t</DD>\r\n"                                           \
	"\t<DT ID=locResultLabel><Font Size=-1><B>Result:</B></Font></DT>"     \
	"<DD>\r\n"                                                             \
	"\t\t" result "\r\n\t</DD>\r\n"                                        \
	"\t<DT ID=locComInfoLabel><Font Size=-1><B>COM Error "                 \
	"Info:</B></Font></DT><DD>\r\n\t\t\r\n\t</DD>\r\n"                     \
	"\t<DT ID=locLastStatLabel><Font Size=-1><B>LastStatus:</B></Font>"    \
	"</DT><DD>\r\n"                                                        \
	"\t\t" last "\r\n\t</DD>\r\n"                                          \
	"\t</DL>\r\n</DD></DL>\r\n"

/* The same layout with German labels (ids unchanged). */
#define STATUS_DE(disp, msg, result, last)                                     \
	"<P ID=locContactAdmin>Wenden Sie sich an den Administrator.\r\n"      \
	"</P>\r\n<DL><DD>\r\n\t<DL>\r\n"                                       \
	"\t<DT ID=locDispLabel><Font Size=-1><B>Disposition:</B></Font>"       \
	"</DT><DD>\r\n"                                                        \
	"\t\t" disp " <LocID ID=locDispSpacer>-</LocID> <LocID "               \
	"ID=locDispUnknown>(unbekannt)</LocID>\r\n\t</DD>\r\n"                 \
	"\t<DT ID=locDispMsgLabel><Font Size=-1><B>Dispositionsmeldung:"       \
	"</B></Font></DT><DD>\r\n"                                             \
	"\t\t" msg "\r\n\t</DD>\r\n"                                           \
	"\t<DT ID=locResultLabel><Font Size=-1><B>Ergebnis:</B></Font></DT>"   \
	"<DD>\r\n"                                                             \
	"\t\t" result "\r\n\t</DD>\r\n"                                        \
	"\t<DT ID=locLastStatLabel><Font Size=-1><B>Letzter Status:</B>"       \
	"</Font></DT><DD>\r\n"                                                 \
	"\t\t" last "\r\n\t</DD>\r\n"                                          \
	"\t</DL>\r\n</DD></DL>\r\n"

static const char issued_downlevel[] =
    HEAD("Certificate Issued") "<P ID=locInfo> The certificate you requested "
                               "was issued to you.</P>\r\n"
                               "<LocID ID=locDownloadCert1>Download "
                               "certificate: </LocID><A "
                               "Href=\"certnew.cer?ReqID=61108&amp;Enc=bin\">"
                               "DER Encoded</A> or <A "
                               "Href=\"certnew.cer?ReqID=61108&amp;Enc=b64\">"
                               "Base 64 encoded</A><BR>\r\n"
                               "<A Href=\"certnew.cer?ReqID=CACert&amp;"
                               "Renewal=2&amp;Mode=inst&amp;Enc=b64\">install "
                               "this CA certificate</A>\r\n" TAIL;

/* The scripted variant, in German: only the script names the ReqID. */
static const char issued_scripted_de[] =
    HEAD("Zertifikat wurde ausgestellt") "<P ID=locInfo> Das angeforderte "
                                         "Zertifikat wurde f\xc3\xbcr Sie "
                                         "ausgestellt.</P>\r\n"
                                         "<A Href=\"certnew.cer?ReqID=CACert&"
                                         "amp;Renewal=0&amp;Mode=inst&amp;"
                                         "Enc=b64\">installieren</A>\r\n"
                                         "<Script Language=\"JavaScript\">\r\n"
                                         "\tfunction handleGetCert() {\r\n"
                                         "\t\tlocation=\"certnew.cer?ReqID="
                                         "2814400&\"+getEncoding();\r\n"
                                         "\t}\r\n</Script>\r\n" TAIL;

static const char pending_en[] = HEAD(
    "Certificate Pending") "<P ID=locPending> Your certificate request has "
                           "been received. However, you must wait for an "
                           "administrator to issue the certificate you "
                           "requested. </P>\r\n"
                           "<P ID=locReqID> Your Request Id is 4711. </P>\r\n"
                           "<Script Language=\"JavaScript\">\r\n\tvar nReqId = "
                           "4711;\r\n</Script>\r\n" TAIL;

/* Pending in German with nothing but the id paragraph to go by. */
static const char pending_de[] =
    HEAD("Zertifikat ausstehend") "<P ID=locPending> Ihre "
                                  "Zertifikatanforderung wurde empfangen. "
                                  "</P>\r\n"
                                  "<P ID=locReqID> Ihre Anforderungs-ID ist "
                                  "4712. </P>\r\n" TAIL;

/* English pending page without ids (older servers). */
static const char pending_english_only[] = HEAD(
    "Certificate Pending") "<P> Your certificate request has been "
                           "received. Your Request Id is 99. </P>\r\n" TAIL;

#define DENIED_MSG_800                                                         \
	"Denied by Policy Module  0x80094800, The request was for a "          \
	"certificate template that is not supported by the Active Directory "  \
	"Certificate Services policy: CiscoPhone."

/* The same as the parser gives it back: white space folded. */
#define DENIED_MSG_800_FOLDED                                                  \
	"Denied by Policy Module 0x80094800, The request was for a "           \
	"certificate template that is not supported by the Active Directory "  \
	"Certificate Services policy: CiscoPhone."

static const char denied_800[] = HEAD(
    "Certificate Request Denied") "<P ID=locDenied> Your certificate request "
                                  "was denied. </P>\r\n"
                                  "<P ID=locReqID> Your Request Id is 61109. "
                                  "</P>\r\n"
                                  "<P ID=locDispMsg> The disposition message "
                                  "is \"" DENIED_MSG_800 "\". </P>\r\n" TAIL;

static const char denied_012_de[] = HEAD(
    "Zertifikatanforderung wurde verweigert") "<P ID=locDenied> Die "
                                              "Zertifikatanforderung wurde "
                                              "verweigert. </P>\r\n"
                                              "<P ID=locReqID> Ihre "
                                              "Anforderungs-ID ist 61110. "
                                              "</P>\r\n"
                                              "<P ID=locDispMsg> Die "
                                              "Dispositionsmeldung lautet "
                                              "\xe2\x80\x9eVom "
                                              "Richtlinienmodul verweigert  "
                                              "0x80094012, Die Berechtigungen "
                                              "erlauben es nicht."
                                              "\xe2\x80\x9c. </P>\r\n" TAIL;

/* Denied the English way of old clients: no ids at all. */
static const char denied_014_english[] = HEAD(
    "Certificate Request Denied") "<P> Your certificate request was denied. "
                                  "Your Request Id is 7. The disposition "
                                  "message is \"Denied by Manager  "
                                  "0x80094014, The request was denied by a "
                                  "certificate manager or CA "
                                  "administrator.\". </P>\r\n" TAIL;

static const char parse_error_denied[] = HEAD(
    "Certificate Request Denied") "<P ID=locDenied> Your certificate request "
                                  "was denied. </P>\r\n"
                                  "<P ID=locDispMsg> The disposition message "
                                  "is \"Error Parsing Request  ASN1 bad tag "
                                  "value met. 0x8009310b (ASN: 267 "
                                  "CRYPT_E_ASN1_BADTAG)\". </P>\r\n" TAIL;

static const char parse_error_de[] = HEAD(
    "Zertifikatanforderung wurde verweigert") "<P ID=locDenied> Die "
                                              "Anforderung wurde verweigert. "
                                              "</P>\r\n<P ID=locDispMsg> "
                                              "Fehler beim Analysieren der "
                                              "Anforderung  Ung\xc3\xbcltiger "
                                              "ASN1-Tagwert. 0x8009310b "
                                              "(ASN: 267 CRYPT_E_ASN1_BADTAG) "
                                              "</P>\r\n" TAIL;

#define RPC                                                                    \
	"The RPC server is unavailable. 0x800706ba (WIN32: 1722 "              \
	"RPC_S_SERVER_UNAVAILABLE)"

static const char ca_down_en[] = HEAD("Error")
    STATUS("0", "The Certification Authority Service has not been started.",
           RPC, RPC) TAIL;

static const char ca_down_de[] = HEAD("Fehler") STATUS_DE(
    "0", "Der Zertifizierungsstellendienst wurde nicht gestartet.",
    "Der RPC-Server ist nicht verf\xc3\xbcgbar. 0x800706ba (WIN32: 1722 "
    "RPC_S_SERVER_UNAVAILABLE)",
    "Der RPC-Server ist nicht verf\xc3\xbcgbar. 0x800706ba (WIN32: 1722 "
    "RPC_S_SERVER_UNAVAILABLE)") TAIL;

static const char error_param[] =
    HEAD("Error") STATUS("0", "The parameter is incorrect.",
                         "The parameter is incorrect. 0x80070057 (WIN32: 87 "
                         "ERROR_INVALID_PARAMETER)",
                         "The parameter is incorrect. 0x80070057 (WIN32: 87 "
                         "ERROR_INVALID_PARAMETER)") TAIL;

/* certnew.cer status pages. */
static const char status_pending[] = HEAD("Error")
    STATUS("5", "Taken Under Submission",
           "The operation completed successfully. 0x0 (WIN32: 0)",
           "The operation completed successfully. 0x0 (WIN32: 0)") TAIL;

static const char status_pending_de[] = HEAD("Fehler")
    STATUS_DE("5", "Zur Bearbeitung angenommen",
              "Der Vorgang wurde erfolgreich beendet. 0x0 (WIN32: 0)",
              "Der Vorgang wurde erfolgreich beendet. 0x0 (WIN32: 0)") TAIL;

static const char status_denied[] = HEAD("Error") STATUS(
    "2", DENIED_MSG_800, "The operation completed successfully. 0x0 (WIN32: 0)",
    "The requested certificate template is not supported by this CA. "
    "0x80094800 (-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)") TAIL;

static const char status_denied_de[] = HEAD("Fehler")
    STATUS_DE("2", "Verweigert von Administrator",
              "Der Vorgang wurde erfolgreich beendet. 0x0 (WIN32: 0)",
              "Die Anforderung wurde verweigert. 0x80094014 (-2146877420 "
              "CERTSRV_E_ADMIN_DENIED_REQUEST)") TAIL;

static const char status_empty[] = HEAD("Error")
    STATUS("0", "The requested property value is empty.",
           "The requested property value is empty. 0x80094004 (-2146877436 "
           "CERTSRV_E_PROPERTY_EMPTY)",
           "The requested property value is empty. 0x80094004 (-2146877436 "
           "CERTSRV_E_PROPERTY_EMPTY)") TAIL;

static const char status_empty_de[] = HEAD("Fehler") STATUS_DE(
    "0", "Der angeforderte Eigenschaftswert ist leer.",
    "Der angeforderte Eigenschaftswert ist leer. 0x80094004 (-2146877436 "
    "CERTSRV_E_PROPERTY_EMPTY)",
    "Der angeforderte Eigenschaftswert ist leer. 0x80094004 (-2146877436 "
    "CERTSRV_E_PROPERTY_EMPTY)") TAIL;

static const char unauthorized[] =
    "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\">\r\n"
    "<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n"
    "<meta http-equiv=\"Content-Type\" content=\"text/html; "
    "charset=iso-8859-1\"/>\r\n"
    "<title>401 - Unauthorized: Access is denied due to invalid "
    "credentials.</title>\r\n</head>\r\n<body><h2>401 - Unauthorized: "
    "Access is denied due to invalid credentials.</h2></body>\r\n</html>\r\n";

static const char carc[] = HEAD("Download a CA Certificate, Certificate Chain, "
                                "or CRL") "<Select Size=4 Name=lbCaInstance "
                                          "ID=lbCaID>\r\n"
                                          "\t<Option Value=\"0\" "
                                          "Selected>Current [Fake CA(3)]\r\n"
                                          "</Select>\r\n<Script "
                                          "Language=\"JavaScript\">\r\n"
                                          "\tvar nRenewals=3;\r\n"
                                          "\tfunction getChosenRenewal() {\r\n"
                                          "\t\treturn "
                                          "nRenewals-document.UIForm."
                                          "lbCaInstance.selectedIndex;\r\n"
                                          "\t}\r\n</Script>\r\n" TAIL;

static const char rqxt[] = HEAD("Submit a Certificate Request or Renewal "
                                "Request") "<Select Name=\"lbCertTemplate\" "
                                           "ID=\"lbCertTemplateID\">\r\n"
                                           "\t<Option "
                                           "Value=\"E;User;1;1;0;0;0;1;0;0;0;0;"
                                           "0;0;0\">User</Option>\r\n"
                                           "\t<Option Value=\"O;Web Server "
                                           "v2;1;1;0;0;0;1;0;0;0;0;0;0;0\">Web "
                                           "Server</Option>\r\n"
                                           "\t<Option "
                                           "Value='O;CiscoPhone;2;1;0;0;0;1;0;"
                                           "0;0;0;0;0;0'>Phones"
                                           "</Option>\r\n"
                                           "</Select>\r\n" TAIL;

/*
 * Classifies text from a heap copy of exactly its length (no NUL after
 * it), so that a read past the end is an ASan error.
 */
static enum certsrv_page_kind
classify(const char *text, int status_page, struct certsrv_page *page)
{
	size_t len = strlen(text);
	char *copy = malloc(len > 0 ? len : 1);
	enum certsrv_page_kind kind;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	kind = status_page ? certsrv_page_status(copy, len, page)
	                   : certsrv_page_submit(copy, len, page);
	free(copy);
	return kind;
}

START_TEST(test_page_issued_downlevel)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(issued_downlevel, 0, &p),
	                 CERTSRV_PAGE_ISSUED);
	ck_assert_int_eq(p.has_req_id, 1);
	ck_assert_uint_eq(p.req_id, 61108);
}
END_TEST

START_TEST(test_page_issued_scripted_localized)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(issued_scripted_de, 0, &p),
	                 CERTSRV_PAGE_ISSUED);
	ck_assert_uint_eq(p.req_id, 2814400);
}
END_TEST

START_TEST(test_page_pending)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(pending_en, 0, &p), CERTSRV_PAGE_PENDING);
	ck_assert_uint_eq(p.req_id, 4711);
	ck_assert_int_eq(classify(pending_de, 0, &p), CERTSRV_PAGE_PENDING);
	ck_assert_uint_eq(p.req_id, 4712);
	ck_assert_int_eq(classify(pending_english_only, 0, &p),
	                 CERTSRV_PAGE_PENDING);
	ck_assert_int_eq(p.has_req_id, 1);
	ck_assert_uint_eq(p.req_id, 99);
}
END_TEST

START_TEST(test_page_denied_template_unsupported)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(denied_800, 0, &p), CERTSRV_PAGE_DENIED);
	ck_assert_int_eq(p.has_code, 1);
	ck_assert_uint_eq(p.code, 0x80094800UL);
	ck_assert_str_eq(p.symbol, "CERTSRV_E_UNSUPPORTED_CERT_TYPE");
	ck_assert_str_eq(p.message, DENIED_MSG_800_FOLDED);
	ck_assert_uint_eq(p.req_id, 61109);
}
END_TEST

START_TEST(test_page_denied_localized)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(denied_012_de, 0, &p), CERTSRV_PAGE_DENIED);
	ck_assert_uint_eq(p.code, 0x80094012UL);
	ck_assert_str_eq(p.symbol, "CERTSRV_E_TEMPLATE_DENIED");
	ck_assert_uint_eq(p.req_id, 61110);
	ck_assert_ptr_nonnull(strstr(p.message, "Richtlinienmodul"));
}
END_TEST

START_TEST(test_page_denied_english_only)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(denied_014_english, 0, &p),
	                 CERTSRV_PAGE_DENIED);
	ck_assert_uint_eq(p.code, 0x80094014UL);
	ck_assert_str_eq(p.symbol, "CERTSRV_E_ADMIN_DENIED_REQUEST");
	ck_assert_uint_eq(p.req_id, 7);
	ck_assert_str_eq(p.message,
	                 "Denied by Manager 0x80094014, The request was denied "
	                 "by a certificate manager or CA administrator.");
}
END_TEST

START_TEST(test_page_parse_error_is_bad_request)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(parse_error_denied, 0, &p),
	                 CERTSRV_PAGE_BAD_REQUEST);
	ck_assert_uint_eq(p.code, 0x8009310bUL);
	ck_assert_str_eq(p.symbol, "CRYPT_E_ASN1_BADTAG");
	ck_assert_int_eq(classify(parse_error_de, 0, &p),
	                 CERTSRV_PAGE_BAD_REQUEST);
	ck_assert_uint_eq(p.code, 0x8009310bUL);
}
END_TEST

START_TEST(test_page_ca_down)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(ca_down_en, 0, &p), CERTSRV_PAGE_CA_DOWN);
	ck_assert_str_eq(
	    p.message,
	    "The Certification Authority Service has not been started.");
	ck_assert_str_eq(p.last_status, RPC);
	ck_assert_uint_eq(p.code, 0x800706baUL);
	ck_assert_str_eq(p.symbol, "RPC_S_SERVER_UNAVAILABLE");
	ck_assert_int_eq(classify(ca_down_de, 0, &p), CERTSRV_PAGE_CA_DOWN);
	ck_assert_int_eq(classify(ca_down_de, 1, &p), CERTSRV_PAGE_CA_DOWN);
	ck_assert_int_eq(p.disposition, 0);
}
END_TEST

START_TEST(test_page_error_layout)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(error_param, 0, &p), CERTSRV_PAGE_ERROR);
	ck_assert_str_eq(p.message, "The parameter is incorrect.");
	ck_assert_uint_eq(p.code, 0x80070057UL);
	ck_assert_str_eq(p.symbol, "ERROR_INVALID_PARAMETER");
}
END_TEST

START_TEST(test_page_status_pending)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(status_pending, 1, &p), CERTSRV_PAGE_PENDING);
	ck_assert_int_eq(p.disposition, 5);
	ck_assert_str_eq(p.message, "Taken Under Submission");
	ck_assert_int_eq(p.has_code, 0);
	ck_assert_int_eq(classify(status_pending_de, 1, &p),
	                 CERTSRV_PAGE_PENDING);
	/* The same page answering a submission is pending too. */
	ck_assert_int_eq(classify(status_pending, 0, &p), CERTSRV_PAGE_PENDING);
}
END_TEST

START_TEST(test_page_status_denied)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(status_denied, 1, &p), CERTSRV_PAGE_DENIED);
	ck_assert_int_eq(p.disposition, 2);
	ck_assert_uint_eq(p.code, 0x80094800UL);
	ck_assert_str_eq(p.symbol, "CERTSRV_E_UNSUPPORTED_CERT_TYPE");
	ck_assert_str_eq(p.message, DENIED_MSG_800_FOLDED);
	ck_assert_int_eq(classify(status_denied_de, 1, &p),
	                 CERTSRV_PAGE_DENIED);
	ck_assert_uint_eq(p.code, 0x80094014UL);
}
END_TEST

START_TEST(test_page_status_unknown_request)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(status_empty, 1, &p),
	                 CERTSRV_PAGE_UNKNOWN_REQUEST);
	ck_assert_uint_eq(p.code, 0x80094004UL);
	ck_assert_str_eq(p.symbol, "CERTSRV_E_PROPERTY_EMPTY");
	ck_assert_int_eq(classify(status_empty_de, 1, &p),
	                 CERTSRV_PAGE_UNKNOWN_REQUEST);
}
END_TEST

START_TEST(test_page_unauthorized)
{
	struct certsrv_page p;

	ck_assert_int_eq(classify(unauthorized, 0, &p),
	                 CERTSRV_PAGE_UNAUTHORIZED);
	ck_assert_int_eq(classify(unauthorized, 1, &p),
	                 CERTSRV_PAGE_UNAUTHORIZED);
	ck_assert_int_eq(
	    certsrv_page_unauthorized(unauthorized, strlen(unauthorized)), 1);
	ck_assert_int_eq(certsrv_page_unauthorized(issued_downlevel,
	                                           strlen(issued_downlevel)),
	                 0);
}
END_TEST

START_TEST(test_page_unknown)
{
	static const char other[] = "<html><body>Welcome to nginx!</body>"
	                            "</html>";
	struct certsrv_page p;

	ck_assert_int_eq(classify(other, 0, &p), CERTSRV_PAGE_UNKNOWN);
	ck_assert_int_eq(classify(other, 1, &p), CERTSRV_PAGE_UNKNOWN);
	ck_assert_int_eq(classify("", 0, &p), CERTSRV_PAGE_UNKNOWN);
	ck_assert_int_eq(certsrv_page_submit(NULL, 0, &p),
	                 CERTSRV_PAGE_UNKNOWN);
	ck_assert_str_eq(certsrv_page_kind_name(CERTSRV_PAGE_CA_DOWN),
	                 "CA down");
}
END_TEST

START_TEST(test_page_renewals)
{
	unsigned long n = 77;
	char *copy;

	copy = malloc(sizeof(carc) - 1);
	memcpy(copy, carc, sizeof(carc) - 1);
	ck_assert_int_eq(certsrv_page_renewals(copy, sizeof(carc) - 1, &n), 0);
	ck_assert_uint_eq(n, 3);
	/* No match is an error, never a default of 0. */
	n = 77;
	ck_assert_int_eq(
	    certsrv_page_renewals(ca_down_en, strlen(ca_down_en), &n), -1);
	ck_assert_uint_eq(n, 77);
	ck_assert_int_eq(certsrv_page_renewals("var nRenewals=;", 15, &n), -1);
	ck_assert_int_eq(certsrv_page_renewals("var nRenewals=12", 16, &n), -1);
	ck_assert_int_eq(
	    certsrv_page_renewals("var nRenewals=99999999999;", 26, &n), -1);
	ck_assert_int_eq(certsrv_page_renewals("var nRenewals = 0 ;", 19, &n),
	                 0);
	ck_assert_uint_eq(n, 0);
	/* Cut off after the digits: the ';' is missing, so no match. */
	ck_assert_int_eq(certsrv_page_renewals(
	                     copy, (size_t)(strstr(copy, "3;") - copy) + 1, &n),
	                 -1);
	free(copy);
}
END_TEST

START_TEST(test_page_template_list)
{
	size_t len = strlen(rqxt);

	ck_assert_int_eq(certsrv_page_has_template(rqxt, len, "User"), 1);
	ck_assert_int_eq(certsrv_page_has_template(rqxt, len, "Web Server v2"),
	                 1);
	ck_assert_int_eq(certsrv_page_has_template(rqxt, len, "ciscophone"), 1);
	ck_assert_int_eq(certsrv_page_has_template(rqxt, len, "Web Server"), 0);
	ck_assert_int_eq(certsrv_page_has_template(rqxt, len, "Machine"), 0);
	ck_assert_int_eq(certsrv_page_has_template(carc, strlen(carc), "User"),
	                 -1);
}
END_TEST

START_TEST(test_page_excerpt)
{
	char out[512];
	char bin[] = {'<', 'b', '>', 'x', '"', '\\', 1, (char)0xff, 'y'};

	certsrv_page_excerpt(unauthorized, strlen(unauthorized), out,
	                     sizeof(out));
	ck_assert_str_eq(out, "401 - Unauthorized: Access is denied due to "
	                      "invalid credentials. 401 - Unauthorized: Access "
	                      "is denied due to invalid credentials.");
	certsrv_page_excerpt(bin, sizeof(bin), out, sizeof(out));
	ck_assert_str_eq(out, "x\\\"\\\\\\x01\\xffy");
	certsrv_page_excerpt(denied_800, strlen(denied_800), out, sizeof(out));
	ck_assert_uint_le(strlen(out), 2 * 200);
	certsrv_page_excerpt(denied_800, strlen(denied_800), out, 8);
	ck_assert_uint_lt(strlen(out), 8);
}
END_TEST

/* Every prefix of every page, parsed from exact-length copies: no crash,
 * no read past the end (ASan), whatever the cut. */
START_TEST(test_page_truncations_are_safe)
{
	static const char *const pages[] = {
	    issued_downlevel, issued_scripted_de, pending_en, denied_800,
	    denied_012_de,    parse_error_de,     ca_down_de, status_denied,
	    status_empty,     unauthorized,       carc,       rqxt,
	};
	struct certsrv_page p;
	unsigned long n;
	char out[256];
	size_t i, cut, len;

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		len = strlen(pages[i]);
		for (cut = 0; cut <= len; cut++) {
			char *copy = malloc(cut > 0 ? cut : 1);

			memcpy(copy, pages[i], cut);
			certsrv_page_submit(copy, cut, &p);
			certsrv_page_status(copy, cut, &p);
			certsrv_page_renewals(copy, cut, &n);
			certsrv_page_has_template(copy, cut, "User");
			certsrv_page_excerpt(copy, cut, out, sizeof(out));
			free(copy);
		}
	}
}
END_TEST

static Suite *
ca_certsrv_page_suite(void)
{
	Suite *s = suite_create("ca_certsrv_page");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_page_issued_downlevel);
	tcase_add_test(tc, test_page_issued_scripted_localized);
	tcase_add_test(tc, test_page_pending);
	tcase_add_test(tc, test_page_denied_template_unsupported);
	tcase_add_test(tc, test_page_denied_localized);
	tcase_add_test(tc, test_page_denied_english_only);
	tcase_add_test(tc, test_page_parse_error_is_bad_request);
	tcase_add_test(tc, test_page_ca_down);
	tcase_add_test(tc, test_page_error_layout);
	tcase_add_test(tc, test_page_status_pending);
	tcase_add_test(tc, test_page_status_denied);
	tcase_add_test(tc, test_page_status_unknown_request);
	tcase_add_test(tc, test_page_unauthorized);
	tcase_add_test(tc, test_page_unknown);
	tcase_add_test(tc, test_page_renewals);
	tcase_add_test(tc, test_page_template_list);
	tcase_add_test(tc, test_page_excerpt);
	tcase_add_test(tc, test_page_truncations_are_safe);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ca_certsrv_page_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
