#!/usr/bin/env python3
"""fake_certsrv.py: a fake Microsoft AD CS Web Enrollment ("certsrv") server.

It replaces a real AD CS in estrad's tests.  Standard
library plus the openssl CLI only.

Usage
-----
  fake_certsrv.py --listen 127.0.0.1:PORT --cert server.pem --key server.key
                  --state-dir DIR [--ca-name NAME] [--reqid-start 61108]
                  [--users user:password,...] [--auth ntlm|basic|anonymous]
                  [--basic-enabled] [--templates WebServer,User,...]
                  [--nrenewals N] [--locale en|de|zh] [--approval auto|manual]

  Prints "fake_certsrv: ready on 127.0.0.1:PORT" on stdout once listening,
  logs one line per request on stderr, exits 0 on SIGTERM or SIGINT.
  PORT 0 picks a free port (the ready line names it).

  --auth ntlm (default)  IIS Windows Authentication: an anonymous request
                         gets 401 with "WWW-Authenticate: Negotiate" and
                         "WWW-Authenticate: NTLM" (plus Basic realm="HOST"
                         with --basic-enabled, which also accepts Basic).
  --auth basic           IIS with Basic only: 401 offers only Basic.
  --auth anonymous       no authentication at all, no 401.
  --users                default "certuser:certpass".  A user may be given
                         as "DOMAIN\\user"; logins are matched on the bare,
                         case-insensitive user name ("DOM\\u", "u@dom" and "u"
                         are the same account).  NTLMv2 responses are checked
                         against the password; NTLMv1 only by user name.
  --templates            templates published on the CA (default
                         "WebServer,User,Machine").  Others are denied with
                         0x80094800.

  The CA lives in DIR: root-ca.pem/.key, issuing-ca-K.pem/.key for each CA
  generation K (0 = original; a renewal re-keys), ca-chain-K.pem (issuing K +
  root).  Existing material is reused on restart; issued certificates and
  requests live in memory only (DIR/req/ holds scratch files).

Quick start
  scripts/mkcerts.sh /tmp/c
  tests/fakes/fake_certsrv.py --listen 127.0.0.1:0 --cert /tmp/c/server.pem \
      --key /tmp/c/server.key --state-dir /tmp/fcs --basic-enabled &
  curl --cacert /tmp/c/ca-chain.pem --ntlm -u 'FAKE\certuser:certpass' \
      -A 'Mozilla/5.0' https://127.0.0.1:PORT/certsrv/certcarc.asp
  Issued certificates verify with /tmp/fcs/ca-chain-K.pem (K = nRenewals at
  issuance).  tests/fakes/test_fake_certsrv.sh shows every feature in use.

Pages (under /certsrv/, names case-insensitive, query names case-insensitive)
  GET  /certsrv               301 to /certsrv/
  GET  /certsrv/              home page (credential check)
  GET  certrqxt.asp           advanced request form with the lbCertTemplate
                              select (one option per enrollable template)
  POST certfnsh.asp           Mode, CertRequest, CertAttrib → issued, pending,
                              denied or error page (also GET with a query)
  GET  certnew.cer?ReqID=N&Enc=bin|b64   issued cert or a status page
  GET  certnew.p7b?ReqID=N&Enc=bin|b64   leaf + chain as PKCS#7
  GET  certnew.cer|p7b?ReqID=CACert&Renewal=K&Enc=…   CA generation K
  GET  certcarc.asp           var nRenewals=N; and the CA instance select
  GET  certckpn.asp, certrqus.asp        plain browser pages

Control API (no authentication, JSON in and out)
  GET  /_fake/state           requests (id, state, template, subject, user,
                              code, disposition), submissions (certfnsh.asp
                              requests that reached the CA), pages (requests
                              per page, all and authenticated), ntlm counters
                              (type1, type2, type3_ok, type3_bad,
                              type3_no_challenge, handshakes), auth counters,
                              nrenewals, config, CA file paths
  GET  /_fake/config          the current switches
  POST /_fake/config          merge switches, e.g.
        {"approval": "auto"|"manual",
         "deny": null|"0x80094800"|"0x80094012"|"0x80094014"|"parse",
                                     # every submission denied so (a request
                                     # id except for "parse") until null
         "unknown_template_denies": true,
         "templates": ["WebServer", ...],
         "template_denied": ["X"],   # published, but no Enroll: hidden from
                                     # certrqxt.asp, submit → 0x80094012
         "locale": "en"|"de"|"zh",
         "ca_down": false,           # certfnsh/certcarc/certnew → error page
         "delay_ms": 0 | {"certfnsh.asp": 2000, "*": 100},  # after auth,
                                     # before the page is processed
         "mangle": null | "garbage" | "unexpected" | "huge" | "reset",
                                     # certfnsh.asp answers 200 with random
                                     # bytes, a page that is no certsrv
                                     # answer, 4 MiB of HTML, or resets the
                                     # connection before answering
         "drop": null | "certfnsh.asp" | ["certnew.cer"] |
                 {"certfnsh.asp": 1},   # 200 answers of that page are cut
                                        # mid-body and the connection closed
                                        # (N times if a count); the request
                                        # is processed first
         "ua_sensitive": true,       # no "Mozilla/" UA → text/html on certnew.*
         "auth": "ntlm"|"basic"|"anonymous", "basic_enabled": false,
         "ntlm_verify_password": true,
         "issued_page": "both"|"downlevel"|"scripted",
         "ca_name": "..."}
        Unknown keys or values → 400.  Answers the new config.
  POST /_fake/reset           switches back to the command-line defaults
  POST /_fake/renew           new CA generation (re-keyed); answers
                              {"nrenewals": N}
  POST /_fake/presign         {"csrs": [base64 DER, ...]}: signs them now, so
                              that a later submission of the same CSR costs
                              the fake no openssl run (benchmarks measure
                              estrad, not the fake's signing); answers
                              {"presigned": N}
  GET  /_fake/requests/N      one request, with "cert_pem" once issued
  POST /_fake/requests/N/issue   issue a pending request
  POST /_fake/requests/N/deny    deny it; optional {"code": "0x80094014"}

Modelled, not captured (real pages give the markers, not the whole page):
the pending page wording after "Your Request Id is N.", its "var nReqId = N;"
line, the unknown-ReqID message line, the Request Mode line for newreq, the
CA-down page (disposition 0, RPC_S_SERVER_UNAVAILABLE), the German and Chinese
texts, the denied page beyond its §9 markers.

Not reproduced: Negotiate/Kerberos (offered in the 401 headers only; a
Negotiate header carrying a raw NTLMSSP token is handled like NTLM), HTTP/2
(ALPN offers http/1.1 only), CMC/PKCS#7 requests (Error Parsing Request),
EDITF_ATTRIBUTESUBJECTALTNAME2 (san: attributes are recorded, not applied).
"""

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import random
import re
import secrets
import signal
import socket
import ssl
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROG = "fake_certsrv"

# --- messages per locale -----------------------------------------------------

# Visible text only; ids, URLs, numbers and symbolic error names stay as they
# are in every locale.  Keys missing from a locale fall back to English.
TEXT = {
    "en": {
        "product": "Microsoft Active Directory Certificate Services",
        "home": "Home",
        "welcome_title": "Welcome",
        "welcome": ("Use this Web site to request a certificate for your Web "
                    "browser, e-mail client, or other program. By using a "
                    "certificate, you can verify your identity to people you "
                    "communicate with over the Web, sign and encrypt messages, "
                    "and, depending upon the type of certificate you request, "
                    "perform other security tasks."),
        "select_task": "Select a task:",
        "task_request": "Request a certificate",
        "task_pending": "View the status of a pending certificate request",
        "task_carc": "Download a CA certificate, certificate chain, or CRL",
        "rqus_title": "Request a Certificate",
        "rqus_adv": "advanced certificate request",
        "rqus_text": "Select the certificate type, or submit an",
        "ckpn_title": "View the Status of a Pending Certificate Request",
        "ckpn_none": "There are no pending certificate requests.",
        "rqxt_title": "Submit a Certificate Request or Renewal Request",
        "rqxt_text": ("To submit a saved request to the CA, paste a base-64-"
                      "encoded CMC or PKCS #10 certificate request or PKCS #7 "
                      "renewal request generated by an external source (such "
                      "as a Web server) in the Saved Request box."),
        "rqxt_saved": "Saved Request:",
        "rqxt_b64": "Base-64-encoded certificate request (CMC or PKCS #10 or PKCS #7):",
        "rqxt_template": "Certificate Template:",
        "rqxt_attrs": "Additional Attributes:",
        "rqxt_attrs2": "Attributes:",
        "rqxt_submit": "Submit >",
        "issued_title": "Certificate Issued",
        "issued_info": "The certificate you requested was issued to you.",
        "der0": "DER encoded", "or": "or", "b640": "Base 64 encoded",
        "dl_cert1": "Download certificate: ", "dl_chain1": "Download certificate chain: ",
        "der1": "DER Encoded", "b641": "Base 64 encoded",
        "dl_cert3": "Download certificate", "dl_chain3": "Download certificate chain",
        "not_trusted": "This CA is not trusted.",
        "to_trust": "To trust certificates issued from this certification authority,",
        "install_ca": "install this CA certificate",
        "pending_title": "Certificate Pending",
        "pending_text": ("Your certificate request has been received. However, "
                         "you must wait for an administrator to issue the "
                         "certificate you requested."),
        "reqid": "Your Request Id is {n}.",
        "pending_return": ("Please return to this web site in a day or two to "
                           "retrieve your certificate."),
        "pending_note": ("Note: You must use this web browser within 10 days "
                         "to retrieve your certificate"),
        "denied_title": "Certificate Request Denied",
        "denied_text": "Your certificate request was denied.",
        "disp_msg_is": 'The disposition message is "{m}".',
        "error_title": "Error",
        "contact_assist": "Contact your administrator for further assistance.",
        "lbl_mode": "Request Mode:", "lbl_disp": "Disposition:",
        "lbl_dispmsg": "Disposition message:", "lbl_result": "Result:",
        "lbl_com": "COM Error Info:", "lbl_last": "LastStatus:",
        "lbl_cause": "Suggested Cause:", "no_sugg": "No suggestions.",
        "mode_fetch": "(certnew.cer/certnew.p7b/certcrl.crl certificate/crl fetch)",
        "mode_newreq": "(newreq) New Request",
        "mode_carc": "(certcarc.asp) CA certificate information",
        "disp_unknown": "(unknown)",
        "under_submission": "Taken Under Submission",
        "ok": "The operation completed successfully.",
        "denied_by_policy": "Denied by Policy Module",
        "denied_by_admin": "Denied by {who}",
        "e_unsupported_msg": ("The request was for a certificate template that "
                              "is not supported by the Active Directory "
                              "Certificate Services policy: {t}."),
        "e_unsupported": "The requested certificate template is not supported by this CA.",
        "e_template_denied": ("The permissions on the certificate template do "
                              "not allow the current user to enroll for this "
                              "type of certificate."),
        "e_admin_denied": ("The request was denied by a certificate manager "
                           "or CA administrator."),
        "e_parsing": "Error Parsing Request",
        "e_badtag": "ASN1 bad tag value met.",
        "e_prop_empty": "The requested property value is empty.",
        "e_ca_down": "The Certification Authority Service has not been started.",
        "e_rpc": "The RPC server is unavailable.",
        "e_param": "The parameter is incorrect.",
        "carc_title": "Download a CA Certificate, Certificate Chain, or CRL",
        "carc_install": "To trust certificates issued from this certification authority,",
        "carc_prompt": ("To download a CA certificate, certificate chain, or "
                        "CRL, select the certificate and encoding method."),
        "carc_cacert": "CA certificate:", "carc_current": "Current",
        "carc_previous": "Previous",
        "carc_encoding": "Encoding method:", "carc_der": "DER", "carc_b64": "Base 64",
        "carc_inst": "Install CA certificate", "carc_dl": "Download CA certificate",
        "carc_chain": "Download CA certificate chain",
        "carc_crl": "Download latest base CRL",
    },
    "de": {
        "product": "Microsoft Active Directory-Zertifikatdienste",
        "home": "Startseite",
        "welcome_title": "Willkommen",
        "welcome": ("Verwenden Sie diese Website, um ein Zertifikat für Ihren "
                    "Webbrowser, E-Mail-Client oder ein anderes Programm "
                    "anzufordern. Mit einem Zertifikat können Sie Ihre "
                    "Identität gegenüber Kommunikationspartnern im Web "
                    "bestätigen, Nachrichten signieren und verschlüsseln und, "
                    "abhängig vom Zertifikattyp, weitere Sicherheitsaufgaben "
                    "ausführen."),
        "select_task": "Wählen Sie eine Aufgabe:",
        "task_request": "Ein Zertifikat anfordern",
        "task_pending": "Status einer ausstehenden Zertifikatanforderung anzeigen",
        "task_carc": "Download eines Zertifizierungsstellenzertifikats, einer Zertifikatkette oder einer Sperrliste",
        "rqus_title": "Zertifikat anfordern",
        "rqus_adv": "erweiterte Zertifikatanforderung",
        "rqus_text": "Wählen Sie den Zertifikattyp aus, oder senden Sie eine",
        "ckpn_title": "Status einer ausstehenden Zertifikatanforderung anzeigen",
        "ckpn_none": "Es gibt keine ausstehenden Zertifikatanforderungen.",
        "rqxt_title": "Zertifikatanforderung oder Erneuerungsanforderung einreichen",
        "rqxt_text": ("Fügen Sie eine Base64-codierte CMC- oder PKCS #10-"
                      "Zertifikatanforderung oder eine PKCS #7-"
                      "Erneuerungsanforderung, die von einer externen Quelle "
                      "(z. B. einem Webserver) erstellt wurde, in das Feld "
                      "\u201eGespeicherte Anforderung\u201c ein."),
        "rqxt_saved": "Gespeicherte Anforderung:",
        "rqxt_b64": "Base64-codierte Zertifikatanforderung (CMC, PKCS #10 oder PKCS #7):",
        "rqxt_template": "Zertifikatvorlage:",
        "rqxt_attrs": "Zusätzliche Attribute:",
        "rqxt_attrs2": "Attribute:",
        "rqxt_submit": "Einsenden >",
        "issued_title": "Zertifikat wurde ausgestellt",
        "issued_info": "Das angeforderte Zertifikat wurde für Sie ausgestellt.",
        "der0": "DER-codiert", "or": "oder", "b640": "Base64-codiert",
        "dl_cert1": "Zertifikat herunterladen: ",
        "dl_chain1": "Zertifikatkette herunterladen: ",
        "der1": "DER-codiert", "b641": "Base64-codiert",
        "dl_cert3": "Zertifikat herunterladen",
        "dl_chain3": "Zertifikatkette herunterladen",
        "not_trusted": "Dieser Zertifizierungsstelle wird nicht vertraut.",
        "to_trust": "Um Zertifikaten dieser Zertifizierungsstelle zu vertrauen,",
        "install_ca": "installieren Sie dieses Zertifizierungsstellenzertifikat",
        "pending_title": "Zertifikat ausstehend",
        "pending_text": ("Ihre Zertifikatanforderung wurde empfangen. Sie müssen "
                         "jedoch warten, bis ein Administrator das angeforderte "
                         "Zertifikat ausstellt."),
        "reqid": "Ihre Anforderungs-ID ist {n}.",
        "pending_return": ("Kehren Sie in ein bis zwei Tagen zu dieser Website "
                           "zurück, um das Zertifikat abzurufen."),
        "pending_note": ("Hinweis: Sie müssen das Zertifikat innerhalb von 10 "
                         "Tagen mit diesem Webbrowser abrufen."),
        "denied_title": "Zertifikatanforderung wurde verweigert",
        "denied_text": "Die Zertifikatanforderung wurde verweigert.",
        "disp_msg_is": "Die Dispositionsmeldung lautet \u201e{m}\u201c.",
        "error_title": "Fehler",
        "contact_assist": "Wenden Sie sich an den Administrator, um weitere Unterstützung zu erhalten.",
        "lbl_mode": "Anforderungsmodus:", "lbl_disp": "Disposition:",
        "lbl_dispmsg": "Dispositionsmeldung:", "lbl_result": "Ergebnis:",
        "lbl_com": "COM-Fehlerinformationen:", "lbl_last": "Letzter Status:",
        "lbl_cause": "Mögliche Ursache:", "no_sugg": "Keine Vorschläge.",
        "mode_fetch": "(certnew.cer/certnew.p7b/certcrl.crl Zertifikat-/Sperrlistenabruf)",
        "mode_newreq": "(newreq) Neue Anforderung",
        "mode_carc": "(certcarc.asp) Informationen zum Zertifizierungsstellenzertifikat",
        "disp_unknown": "(unbekannt)",
        "under_submission": "Zur Bearbeitung angenommen",
        "ok": "Der Vorgang wurde erfolgreich beendet.",
        "denied_by_policy": "Vom Richtlinienmodul verweigert",
        "denied_by_admin": "Verweigert von {who}",
        "e_unsupported_msg": ("Die Anforderung bezog sich auf eine "
                              "Zertifikatvorlage, die von der Richtlinie der "
                              "Active Directory-Zertifikatdienste nicht "
                              "unterstützt wird: {t}."),
        "e_unsupported": "Die angeforderte Zertifikatvorlage wird von dieser Zertifizierungsstelle nicht unterstützt.",
        "e_template_denied": ("Die Berechtigungen für die Zertifikatvorlage "
                              "erlauben dem aktuellen Benutzer nicht, sich für "
                              "diesen Zertifikattyp zu registrieren."),
        "e_admin_denied": ("Die Anforderung wurde von einem Zertifikat-Manager "
                           "oder Zertifizierungsstellenadministrator verweigert."),
        "e_parsing": "Fehler beim Analysieren der Anforderung",
        "e_badtag": "Ungültiger ASN1-Tagwert.",
        "e_prop_empty": "Der angeforderte Eigenschaftswert ist leer.",
        "e_ca_down": "Der Zertifizierungsstellendienst wurde nicht gestartet.",
        "e_rpc": "Der RPC-Server ist nicht verfügbar.",
        "e_param": "Falscher Parameter.",
        "carc_title": "Download eines Zertifizierungsstellenzertifikats, einer Zertifikatkette oder einer Sperrliste",
        "carc_install": "Um Zertifikaten dieser Zertifizierungsstelle zu vertrauen,",
        "carc_prompt": ("Wählen Sie das Zertifikat und die Codierungsmethode "
                        "aus, um ein Zertifizierungsstellenzertifikat, eine "
                        "Zertifikatkette oder eine Sperrliste herunterzuladen."),
        "carc_cacert": "Zertifizierungsstellenzertifikat:", "carc_current": "Aktuell",
        "carc_previous": "Vorherig",
        "carc_encoding": "Codierungsmethode:", "carc_der": "DER", "carc_b64": "Base64",
        "carc_inst": "Zertifizierungsstellenzertifikat installieren",
        "carc_dl": "Zertifizierungsstellenzertifikat herunterladen",
        "carc_chain": "Zertifizierungsstellen-Zertifikatkette herunterladen",
        "carc_crl": "Aktuelle Basissperrliste herunterladen",
    },
    "zh": {
        "product": "Microsoft Active Directory 证书服务",
        "home": "主页",
        "welcome_title": "欢迎使用",
        "welcome": ("使用此网站为你的 Web 浏览器、电子邮件客户端或其他程序申请证书。"
                    "通过使用证书，你可以向通过 Web 通信的人确认你的身份、签名并加密"
                    "邮件，并根据你申请的证书类型执行其他安全任务。"),
        "select_task": "选择一个任务:",
        "task_request": "申请证书",
        "task_pending": "查看挂起的证书申请的状态",
        "task_carc": "下载 CA 证书、证书链或 CRL",
        "rqus_title": "申请一个证书",
        "rqus_adv": "高级证书申请",
        "rqus_text": "选择证书类型，或提交",
        "ckpn_title": "查看挂起的证书申请的状态",
        "ckpn_none": "没有挂起的证书申请。",
        "rqxt_title": "提交一个证书申请或续订申请",
        "rqxt_text": ("要向 CA 提交一个保存的申请，请在“保存的申请”框中粘贴一个由外部源"
                      "(如 Web 服务器)生成的 base-64 编码的 CMC 或 PKCS #10 证书申请"
                      "或 PKCS #7 续订申请。"),
        "rqxt_saved": "保存的申请:",
        "rqxt_b64": "Base-64 编码的证书申请(CMC 或 PKCS #10 或 PKCS #7):",
        "rqxt_template": "证书模板:",
        "rqxt_attrs": "附加属性:",
        "rqxt_attrs2": "属性:",
        "rqxt_submit": "提交 >",
        "issued_title": "证书已颁发",
        "issued_info": "你申请的证书已颁发给你。",
        "der0": "DER 编码", "or": "或", "b640": "Base 64 编码",
        "dl_cert1": "下载证书: ", "dl_chain1": "下载证书链: ",
        "der1": "DER 编码", "b641": "Base 64 编码",
        "dl_cert3": "下载证书", "dl_chain3": "下载证书链",
        "not_trusted": "此 CA 不受信任。",
        "to_trust": "若要信任从此证书颁发机构颁发的证书，",
        "install_ca": "安装此 CA 证书",
        "pending_title": "证书挂起",
        "pending_text": "已收到你的证书申请。但是，你必须等待管理员颁发你申请的证书。",
        "reqid": "你的申请 ID 为 {n}。",
        "pending_return": "请在一两天内返回此网站以获取你的证书。",
        "pending_note": "注意: 你必须在 10 天内使用此 Web 浏览器获取你的证书",
        "denied_title": "证书申请被拒绝",
        "denied_text": "你的证书申请被拒绝。",
        "disp_msg_is": "处理消息为“{m}”。",
        "error_title": "错误",
        "contact_assist": "请与管理员联系以获得进一步帮助。",
        "lbl_mode": "申请模式:", "lbl_disp": "处理:",
        "lbl_dispmsg": "处理消息:", "lbl_result": "结果:",
        "lbl_com": "COM 错误信息:", "lbl_last": "上次状态:",
        "lbl_cause": "建议的原因:", "no_sugg": "没有建议。",
        "mode_fetch": "(certnew.cer/certnew.p7b/certcrl.crl 证书/CRL 获取)",
        "mode_newreq": "(newreq) 新申请",
        "mode_carc": "(certcarc.asp) CA 证书信息",
        "disp_unknown": "(未知)",
        "under_submission": "已提交，等待处理",
        "ok": "操作成功完成。",
        "denied_by_policy": "被策略模块拒绝",
        "denied_by_admin": "被 {who} 拒绝",
        "e_unsupported_msg": "申请的证书模板不受 Active Directory 证书服务策略支持: {t}。",
        "e_unsupported": "此 CA 不支持请求的证书模板。",
        "e_template_denied": "证书模板的权限不允许当前用户注册此类型的证书。",
        "e_admin_denied": "该申请已被证书管理员或 CA 管理员拒绝。",
        "e_parsing": "分析申请时出错",
        "e_badtag": "遇到错误的 ASN1 标记值。",
        "e_prop_empty": "请求的属性值为空。",
        "e_ca_down": "证书颁发机构服务尚未启动。",
        "e_rpc": "RPC 服务器不可用。",
        "e_param": "参数错误。",
        "carc_title": "下载 CA 证书、证书链或 CRL",
        "carc_install": "若要信任从此证书颁发机构颁发的证书，",
        "carc_prompt": "若要下载 CA 证书、证书链或 CRL，请选择证书和编码方法。",
        "carc_cacert": "CA 证书:", "carc_current": "当前", "carc_previous": "以前",
        "carc_encoding": "编码方法:", "carc_der": "DER", "carc_b64": "Base 64",
        "carc_inst": "安装 CA 证书", "carc_dl": "下载 CA 证书",
        "carc_chain": "下载 CA 证书链", "carc_crl": "下载最新的基 CRL",
    },
}

# HRESULTs the pages quote: value → (symbol, message key).
CODES = {
    0x80094800: ("CERTSRV_E_UNSUPPORTED_CERT_TYPE", "e_unsupported"),
    0x80094012: ("CERTSRV_E_TEMPLATE_DENIED", "e_template_denied"),
    0x80094014: ("CERTSRV_E_ADMIN_DENIED_REQUEST", "e_admin_denied"),
    0x80094004: ("CERTSRV_E_PROPERTY_EMPTY", "e_prop_empty"),
}
DENY_SWITCHES = ("0x80094800", "0x80094012", "0x80094014", "parse")

# Request dispositions (CR_DISP_*), §3.
DISP_INCOMPLETE, DISP_ERROR, DISP_DENIED, DISP_ISSUED = 0, 1, 2, 3
DISP_UNDER_SUBMISSION = 5

# Pages whose name the control API and the counters know.
PAGES = ("default.asp", "certrqxt.asp", "certfnsh.asp", "certnew.cer",
         "certnew.p7b", "certcarc.asp", "certckpn.asp", "certrqus.asp")


def hresult_text(code):
    """0x80094800 → '0x80094800 (-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)'."""
    signed = code - (1 << 32) if code & 0x80000000 else code
    return "0x%08x (%d %s)" % (code, signed, CODES[code][0])


def pem_armour(der, label="CERTIFICATE"):
    """PEM with 64-column lines and CRLF, as certsrv sends it."""
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN %s-----\r\n%s\r\n-----END %s-----\r\n"
            % (label, "\r\n".join(lines), label)).encode()


def log(msg):
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write("%s.%03dZ %s: %s\n" % (t, int(time.time() * 1000) % 1000,
                                           PROG, msg))
    sys.stderr.flush()


# --- NTLM ----------------------------------------------------------------------

def _md4(data):
    """MD4 (RFC 1320); OpenSSL 3 hides it in the legacy provider."""
    def f(x, y, z): return (x & y) | (~x & z)
    def g(x, y, z): return (x & y) | (x & z) | (y & z)
    def h(x, y, z): return x ^ y ^ z
    def rol(v, s): v &= 0xffffffff; return ((v << s) | (v >> (32 - s))) & 0xffffffff
    msg = bytearray(data)
    bitlen = (8 * len(data)) & 0xffffffffffffffff
    msg.append(0x80)
    while len(msg) % 64 != 56:
        msg.append(0)
    msg += struct.pack("<Q", bitlen)
    a, b, c, d = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):
            s = (3, 7, 11, 19)[i % 4]
            if i % 4 == 0: a = rol(a + f(b, c, d) + x[i], s)
            elif i % 4 == 1: d = rol(d + f(a, b, c) + x[i], s)
            elif i % 4 == 2: c = rol(c + f(d, a, b) + x[i], s)
            else: b = rol(b + f(c, d, a) + x[i], s)
        for i in range(16):
            k = (i % 4) * 4 + i // 4
            s = (3, 5, 9, 13)[i % 4]
            if i % 4 == 0: a = rol(a + g(b, c, d) + x[k] + 0x5a827999, s)
            elif i % 4 == 1: d = rol(d + g(a, b, c) + x[k] + 0x5a827999, s)
            elif i % 4 == 2: c = rol(c + g(d, a, b) + x[k] + 0x5a827999, s)
            else: b = rol(b + g(c, d, a) + x[k] + 0x5a827999, s)
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):
            k = order[i]
            s = (3, 9, 11, 15)[i % 4]
            if i % 4 == 0: a = rol(a + h(b, c, d) + x[k] + 0x6ed9eba1, s)
            elif i % 4 == 1: d = rol(d + h(a, b, c) + x[k] + 0x6ed9eba1, s)
            elif i % 4 == 2: c = rol(c + h(d, a, b) + x[k] + 0x6ed9eba1, s)
            else: b = rol(b + h(c, d, a) + x[k] + 0x6ed9eba1, s)
        a = (a + aa) & 0xffffffff
        b = (b + bb) & 0xffffffff
        c = (c + cc) & 0xffffffff
        d = (d + dd) & 0xffffffff
    return struct.pack("<4I", a, b, c, d)


NTLMSSP = b"NTLMSSP\x00"
NEG_UNICODE, NEG_OEM, REQ_TARGET = 0x1, 0x2, 0x4
NEG_NTLM, NEG_ALWAYS_SIGN, TARGET_DOMAIN = 0x200, 0x8000, 0x10000
NEG_ESS, NEG_TARGET_INFO, NEG_VERSION = 0x80000, 0x800000, 0x02000000
NEG_128, NEG_56 = 0x20000000, 0x80000000


def ntlm_type(token):
    """The NTLMSSP message type of token, or 0."""
    if len(token) >= 12 and token[:8] == NTLMSSP:
        return struct.unpack("<I", token[8:12])[0]
    return 0


def ntlm_type2(type1, challenge, domain="FAKE", host="CERTSRV"):
    """The server's CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) for a Type 1."""
    cflags = struct.unpack("<I", type1[12:16])[0] if len(type1) >= 16 else 0
    unicode = bool(cflags & NEG_UNICODE) or not cflags & NEG_OEM
    flags = (NEG_UNICODE if unicode else NEG_OEM) | REQ_TARGET | NEG_NTLM | \
        TARGET_DOMAIN | NEG_TARGET_INFO | NEG_VERSION
    flags |= cflags & (NEG_ALWAYS_SIGN | NEG_ESS | NEG_128 | NEG_56)
    target = domain.encode("utf-16-le" if unicode else "latin-1")
    ft = int((time.time() + 11644473600) * 10000000)

    def av(i, v):
        return struct.pack("<HH", i, len(v)) + v
    dns_dom = (domain.lower() + ".test").encode("utf-16-le")
    info = (av(2, domain.encode("utf-16-le")) + av(1, host.encode("utf-16-le"))
            + av(4, dns_dom)
            + av(3, (host.lower() + "." + domain.lower() + ".test").encode("utf-16-le"))
            + av(5, dns_dom) + av(7, struct.pack("<Q", ft)) + av(0, b""))
    off = 56
    return (NTLMSSP + struct.pack("<I", 2)
            + struct.pack("<HHI", len(target), len(target), off)
            + struct.pack("<I", flags) + challenge + b"\x00" * 8
            + struct.pack("<HHI", len(info), len(info), off + len(target))
            + bytes((10, 0)) + struct.pack("<H", 17763) + b"\x00\x00\x00\x0f"
            + target + info)


def ntlm_parse_type3(msg):
    """(user, domain, nt_response, flags) from an AUTHENTICATE_MESSAGE."""
    def field(off):
        ln, _, o = struct.unpack("<HHI", msg[off:off + 8])
        if o + ln > len(msg):
            raise ValueError("security buffer past the message")
        return msg[o:o + ln]
    if len(msg) < 64:
        raise ValueError("short Type 3")
    flags = struct.unpack("<I", msg[60:64])[0]
    enc = "utf-16-le" if flags & NEG_UNICODE else "latin-1"
    nt = field(20)
    dom = field(28).decode(enc, "replace")
    user = field(36).decode(enc, "replace")
    return user, dom, nt, flags


def ntlmv2_ok(user, domain, password, challenge, nt):
    """True if nt is a valid NTLMv2 response for password."""
    key = _md4(password.encode("utf-16-le"))
    owf = hmac.new(key, (user.upper() + domain).encode("utf-16-le"),
                   hashlib.md5).digest()
    proof = hmac.new(owf, challenge + nt[16:], hashlib.md5).digest()
    return hmac.compare_digest(proof, nt[:16])


# --- the CA ------------------------------------------------------------------

MANGLE_SWITCHES = (None, "garbage", "unexpected", "huge", "reset")


class CA:
    """Root + issuing CA generations in a state directory, via openssl."""

    CNF = """[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_issuing ]
basicConstraints = critical, CA:TRUE
keyUsage = digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
1.3.6.1.4.1.311.21.1 = ASN1:INTEGER:{caversion}
[ v3_leaf ]
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
1.3.6.1.4.1.311.20.2 = ASN1:BMPSTRING:{template}
"""

    def __init__(self, state_dir, ca_name, nrenewals):
        self.dir = os.path.abspath(state_dir)
        self.ca_name = ca_name
        self.lock = threading.Lock()
        os.makedirs(os.path.join(self.dir, "req"), exist_ok=True)
        self.der = {}       # generation → issuing CA DER
        # sha256(CSR DER) → (csr_pem, subject, cert DER, generation)
        self.presigned = {}
        self.root_der = None
        if not os.path.exists(self.path("root-ca.pem")):
            self._gen_root()
        self.root_der = self._to_der(self.path("root-ca.pem"))
        k = 0
        while os.path.exists(self.path("issuing-ca-%d.pem" % k)):
            self.der[k] = self._to_der(self.path("issuing-ca-%d.pem" % k))
            k += 1
        while len(self.der) <= nrenewals:
            self._gen_issuing(len(self.der))

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def nrenewals(self):
        return len(self.der) - 1

    def ossl(self, *args, stdin=None):
        """Runs openssl; returns stdout, raises RuntimeError naming the call."""
        p = subprocess.run(["openssl"] + list(args), input=stdin,
                           capture_output=True)
        if p.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (
                args[0], p.stderr.decode(errors="replace").strip()[:500]))
        return p.stdout

    def _cnf(self, template="", caversion=0):
        fd, name = tempfile.mkstemp(dir=self.path("req"), suffix=".cnf")
        with os.fdopen(fd, "w") as f:
            f.write(self.CNF.format(template=template or "Unknown",
                                    caversion=caversion))
        return name

    def _to_der(self, pem):
        return self.ossl("x509", "-in", pem, "-outform", "DER")

    @staticmethod
    def serial():
        return "0x%x%s" % (random.randint(1, 7), secrets.token_hex(18))

    def _gen_root(self):
        cnf = self._cnf()
        try:
            self.ossl("genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt",
                      "rsa_keygen_bits:2048", "-out", self.path("root-ca.key"))
            self.ossl("req", "-new", "-x509", "-config", cnf, "-key",
                      self.path("root-ca.key"), "-subj",
                      "/DC=test/DC=fake/CN=%s Root" % self.ca_name,
                      "-days", "3650", "-sha256", "-set_serial", self.serial(),
                      "-extensions", "v3_root", "-out", self.path("root-ca.pem"))
        finally:
            os.unlink(cnf)

    def _gen_issuing(self, k):
        """Generation k: a new key, signed by the root (a re-keyed renewal)."""
        cnf = self._cnf(caversion=(k << 16) | k)
        key = self.path("issuing-ca-%d.key" % k)
        pem = self.path("issuing-ca-%d.pem" % k)
        csr = self.path("req/issuing-%d.csr" % k)
        try:
            self.ossl("genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt",
                      "rsa_keygen_bits:2048", "-out", key)
            self.ossl("req", "-new", "-config", cnf, "-key", key, "-subj",
                      "/DC=test/DC=fake/CN=%s" % self.ca_name, "-out", csr)
            self.ossl("x509", "-req", "-in", csr, "-CA", self.path("root-ca.pem"),
                      "-CAkey", self.path("root-ca.key"), "-days", "1825",
                      "-sha256", "-set_serial", self.serial(), "-extfile", cnf,
                      "-extensions", "v3_issuing", "-out", pem)
        finally:
            os.unlink(cnf)
            if os.path.exists(csr):
                os.unlink(csr)
        with open(self.path("ca-chain-%d.pem" % k), "w") as out:
            for f in (pem, self.path("root-ca.pem")):
                with open(f) as src:
                    out.write(src.read())
        self.der[k] = self._to_der(pem)

    def renew(self):
        with self.lock:
            self._gen_issuing(len(self.der))
            return self.nrenewals

    def csr_check(self, der, reqid_hint):
        """(pem, subject) of a DER PKCS#10 whose signature verifies."""
        name = self.path("req/csr-%s-%s.der" % (reqid_hint, secrets.token_hex(4)))
        with open(name, "wb") as f:
            f.write(der)
        try:
            pem = self.ossl("req", "-inform", "DER", "-in", name, "-verify",
                            "-outform", "PEM")
            subj = self.ossl("req", "-inform", "DER", "-in", name, "-noout",
                             "-subject", "-nameopt", "RFC2253")
        finally:
            os.unlink(name)
        subj = subj.decode(errors="replace").strip()
        if subj.startswith("subject="):
            subj = subj[len("subject="):]
        return pem, subj

    def presign(self, der):
        """Checks and signs a CSR ahead of its submission (see presign)."""
        pem, subject = self.csr_check(der, "pre")
        cert, gen = self.issue(0, pem, "")
        with self.lock:
            self.presigned[hashlib.sha256(der).hexdigest()] = (
                pem, subject, cert, gen)

    def issue(self, reqid, csr_pem, template):
        """Signs csr_pem with the current generation: (cert DER, generation)."""
        with self.lock:
            gen = self.nrenewals
            csr = self.path("req/%d.csr" % reqid)
            with open(csr, "wb") as f:
                f.write(csr_pem)
            cnf = self._cnf(template=re.sub(r"[^A-Za-z0-9 ._-]", "_", template))
            try:
                out = self.ossl(
                    "x509", "-req", "-in", csr, "-CA",
                    self.path("issuing-ca-%d.pem" % gen), "-CAkey",
                    self.path("issuing-ca-%d.key" % gen), "-days", "365",
                    "-sha256", "-set_serial", self.serial(),
                    "-copy_extensions", "copy", "-extfile", cnf,
                    "-extensions", "v3_leaf", "-outform", "DER")
            finally:
                os.unlink(cnf)
                os.unlink(csr)
            return out, gen

    def p7b(self, ders):
        """A certs-only PKCS#7 (DER) holding ders."""
        files = []
        try:
            for d in ders:
                fd, name = tempfile.mkstemp(dir=self.path("req"), suffix=".pem")
                with os.fdopen(fd, "wb") as f:
                    f.write(pem_armour(d))
                files.append(name)
            args = ["crl2pkcs7", "-nocrl", "-outform", "DER"]
            for name in files:
                args += ["-certfile", name]
            return self.ossl(*args)
        finally:
            for name in files:
                os.unlink(name)

    def chain_ders(self, gen):
        return [self.der[gen], self.root_der]


# --- state ---------------------------------------------------------------------

class State:
    """Everything the fake remembers, behind one lock."""

    def __init__(self, args, ca):
        self.lock = threading.Lock()
        self.ca = ca
        self.defaults = {
            "approval": args.approval,
            "deny": None,
            "unknown_template_denies": True,
            "templates": [t for t in args.templates.split(",") if t],
            "template_denied": [],
            "locale": args.locale,
            "ca_down": False,
            "delay_ms": 0,
            "drop": None,
            "mangle": None,
            "ua_sensitive": True,
            "auth": args.auth,
            "basic_enabled": args.basic_enabled,
            "ntlm_verify_password": True,
            "issued_page": "both",
            "ca_name": args.ca_name,
        }
        self.config = json.loads(json.dumps(self.defaults))
        self.users = {}
        for entry in args.users.split(","):
            if not entry:
                continue
            user, _, pw = entry.partition(":")
            self.users[bare_user(user).lower()] = pw
        self.requests = {}
        self.next_id = args.reqid_start
        self.submissions = 0
        self.pages = {}
        self.pages_auth = {}
        self.ntlm = dict(type1=0, type2=0, type3_ok=0, type3_bad=0,
                         type3_no_challenge=0, handshakes=0)
        self.auth = dict(anonymous_401=0, basic_ok=0, basic_bad=0,
                         bad_credentials_401=0)
        self.drops_done = {}
        self.connections = 0

    def set_config(self, new):
        """Validates and merges new into the config; raises ValueError."""
        enums = {"approval": ("auto", "manual"), "locale": tuple(TEXT),
                 "auth": ("basic", "ntlm", "anonymous"),
                 "issued_page": ("both", "downlevel", "scripted")}
        bools = ("unknown_template_denies", "ca_down", "ua_sensitive",
                 "basic_enabled", "ntlm_verify_password")
        if not isinstance(new, dict):
            raise ValueError("config must be a JSON object")
        for k, v in new.items():
            if k not in self.defaults:
                raise ValueError("unknown config key %r" % k)
            if k in enums and v not in enums[k]:
                raise ValueError("%s must be one of %s" % (k, "|".join(enums[k])))
            if k in bools and not isinstance(v, bool):
                raise ValueError("%s must be true or false" % k)
            if k == "deny" and v not in (None, "", False) and \
                    str(v).lower() not in DENY_SWITCHES:
                raise ValueError("deny must be null or one of %s"
                                 % "|".join(DENY_SWITCHES))
            if k in ("templates", "template_denied") and not (
                    isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise ValueError("%s must be a list of strings" % k)
            if k == "delay_ms" and not (isinstance(v, int) or (
                    isinstance(v, dict) and all(isinstance(x, int)
                                                for x in v.values()))):
                raise ValueError("delay_ms must be ms or {page: ms}")
            if k == "drop" and not (v is None or isinstance(v, (str, list, dict))):
                raise ValueError("drop must be null, a page, a list or {page: count}")
            if k == "mangle" and v not in MANGLE_SWITCHES:
                raise ValueError("mangle must be null or one of garbage|"
                                 "unexpected|huge|reset")
            if k == "ca_name" and not (isinstance(v, str) and v):
                raise ValueError("ca_name must be a string")
        with self.lock:
            self.config.update(new)
            if "drop" in new:
                self.drops_done = {}
            return dict(self.config)

    def cfg(self):
        with self.lock:
            return dict(self.config)

    def count(self, table, page):
        with self.lock:
            table[page] = table.get(page, 0) + 1

    def new_request(self, **fields):
        with self.lock:
            rid = self.next_id
            self.next_id += 1
            fields.update(id=rid, submitted=time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self.requests[rid] = fields
            return fields

    def snapshot(self):
        with self.lock:
            reqs = []
            for r in self.requests.values():
                reqs.append({k: v for k, v in r.items()
                             if k not in ("csr_pem", "cert_der", "p7b",
                                          "presigned")})
            return {
                "requests": reqs,
                "next_reqid": self.next_id,
                "submissions": self.submissions,
                "pages": dict(self.pages),
                "pages_authenticated": dict(self.pages_auth),
                "ntlm": dict(self.ntlm),
                "auth": dict(self.auth),
                "connections": self.connections,
                "nrenewals": self.ca.nrenewals,
                "config": dict(self.config),
                "ca": {"dir": self.ca.dir,
                       "root": self.ca.path("root-ca.pem"),
                       "issuing": [self.ca.path("issuing-ca-%d.pem" % k)
                                   for k in sorted(self.ca.der)],
                       "chain": [self.ca.path("ca-chain-%d.pem" % k)
                                 for k in sorted(self.ca.der)]},
            }


def bare_user(user):
    """'DOM\\u', 'u@dom', 'u' → 'u'."""
    if "\\" in user:
        user = user.split("\\", 1)[1]
    if "@" in user:
        user = user.split("@", 1)[0]
    return user


# --- pages ---------------------------------------------------------------------

GREEN_HR = ('<!-- Green HR --><Table Border=0 CellSpacing=0 CellPadding=0 '
            'Width=100%><TR><TD BgColor=#008080><Img Src="certspc.gif" Alt="" '
            'Height=2 Width=1></TD></TR></Table>')
WHITE_HR = ('<!-- White HR --><Table Border=0 CellSpacing=0 CellPadding=0 '
            'Width=100%><TR><TD BgColor=#FFFFFF><Img Src="certspc.gif" Alt="" '
            'Height=5 Width=1></TD></TR></Table>')


class Pages:
    """Builds the certsrv pages for one locale and CA name; CRLF, UTF-8."""

    def __init__(self, locale, ca_name):
        self.t = dict(TEXT["en"])
        self.t.update(TEXT.get(locale, {}))
        self.ca = html.escape(ca_name)

    def head(self, title, page_title_id="locPageTitle"):
        t = self.t
        return f"""<HTML>
<Head>
    <Meta HTTP-Equiv="Content-Type" Content="text/html; charset=UTF-8">
    <Meta HTTP-Equiv="X-UA-Compatible" Content="IE=7">
    <Title>{t['product']}</Title>
</Head>
<Body BgColor=#FFFFFF Link=#0000FF VLink=#0000FF ALink=#0000FF><Font ID=locPageFont Face="Arial">

<Table Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080>
<TR>
\t<TD><Font Color=#FFFFFF><LocID ID=locMSCertSrv><Font Face="Arial" Size=-1><B><I>Microsoft</I></B> {t['product'][len('Microsoft '):]} &nbsp;--&nbsp; {self.ca} &nbsp;</Font></LocID></Font></TD>
\t<TD ID=locHomeAlign Align=Right><A Href="/certsrv"><Font Color=#FFFFFF><LocID ID=locHomeLink><Font Face="Arial" Size=-1><B>{t['home']}</B></Font></LocID></Font></A></TD>
</TR>
</Table>

<P ID={page_title_id}> <B> {title} </B>
{GREEN_HR}
"""

    @staticmethod
    def tail(scripts="<!-- no scripts -->"):
        return f"""
{GREEN_HR}
{WHITE_HR}

</Font>
<!-- ############################################################ -->
<!-- End of standard text. Scripts follow  -->

{scripts}

</Body>
</HTML>
"""

    @staticmethod
    def crlf(text):
        return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")

    def home(self):
        t = self.t
        body = self.head(t["welcome_title"]) + f"""
<P ID=locWelcome>{t['welcome']}</P>
<P ID=locSelectTask><B>{t['select_task']}</B>
<DL>
\t<DD><A Href="certrqus.asp"><LocID ID=locRequestLink>{t['task_request']}</LocID></A>
\t<DD><A Href="certckpn.asp"><LocID ID=locCheckLink>{t['task_pending']}</LocID></A>
\t<DD><A Href="certcarc.asp"><LocID ID=locCaLink>{t['task_carc']}</LocID></A>
</DL>
</P>
""" + self.tail()
        return self.crlf(body)

    def rqus(self):
        t = self.t
        body = self.head(t["rqus_title"]) + f"""
<P ID=locSelectType>{t['rqus_text']} <A Href="certrqxt.asp"><LocID ID=locAdvLink>{t['rqus_adv']}</LocID></A>.</P>
""" + self.tail()
        return self.crlf(body)

    def ckpn(self):
        t = self.t
        body = self.head(t["ckpn_title"]) + f"""
<P ID=locNoPending>{t['ckpn_none']}</P>
""" + self.tail()
        return self.crlf(body)

    def rqxt(self, templates):
        """Advanced request form; option value fields: index 1 = internal name."""
        t = self.t
        opts = []
        for i, name in enumerate(templates):
            display = html.escape(name)
            fields = ["E", html.escape(name), "2", "%d" % (100 + i), "0", "1",
                      "0", "0", "1.3.6.1.4.1.311.21.8.%d.%d" % (4242, 100 + i),
                      "2", "0", "1", "0", "0", "4", display]
            sel = " Selected" if i == 0 else ""
            opts.append('\t\t\t<Option Value="%s"%s>%s</Option>'
                        % (";".join(fields), sel, display))
        options = "\n".join(opts)
        body = self.head(t["rqxt_title"]) + f"""
<P ID=locInfo>{t['rqxt_text']}</P>

<Form Name=SubmittedData Action="certfnsh.asp" Method=Post>
\t<Input Type=Hidden Name=Mode Value="newreq">
\t<Input Type=Hidden Name=TargetStoreFlags Value="0">
\t<Input Type=Hidden Name=SaveCert Value="yes">
\t<Input Type=Hidden Name=FriendlyType Value="">
\t<Input Type=Hidden Name=ThumbPrint Value="">
<Table Border=0 CellSpacing=0 CellPadding=0>
\t<TR>
\t\t<TD ID=locSavedReqHead ColSpan=3><Font Size=-1><BR><B>{t['rqxt_saved']}</B></Font></TD>
\t</TR>
\t<TR><TD ColSpan=3 Height=2 BgColor=#008080></TD></TR>
\t<TR><TD ColSpan=3 Height=6></TD></TR>
\t<TR>
\t\t<TD ID=locB64Label Align=Right VAlign=Top><Font Size=-1><Label For=locTaRequest>{t['rqxt_b64']}</Label></Font></TD>
\t\t<TD><TextArea Name=CertRequest ID=locTaRequest Rows=10 Cols=60 Wrap=Off></TextArea></TD>
\t</TR>
\t<TR>
\t\t<TD ID=locTemplateHead ColSpan=3><Font Size=-1><BR><Label For=lbCertTemplateID><LocID ID=locTemplateHead2><B>{t['rqxt_template']}</B></LocID></Label></Font></TD>
\t</TR>
\t<TR><TD ColSpan=3 Height=2 BgColor=#008080></TD></TR>
\t<TR><TD></TD>
\t\t<TD><Select Name="lbCertTemplate" ID="lbCertTemplateID">
{options}
\t\t</Select></TD>
\t</TR>
\t<TR>
\t\t<TD ID=locAttrHead ColSpan=3><Font Size=-1><BR><B>{t['rqxt_attrs']}</B></Font></TD>
\t</TR>
\t<TR><TD ColSpan=3 Height=2 BgColor=#008080></TD></TR>
\t<TR>
\t\t<TD ID=locAttrLabel Align=Right VAlign=Top><Font Size=-1><Label For=locTaAttrib>{t['rqxt_attrs2']}</Label></Font></TD>
\t\t<TD><TextArea Name=CertAttrib ID=locTaAttrib Rows=2 Cols=30 Wrap=Off></TextArea></TD>
\t</TR>
\t<TR><TD></TD>
\t\t<TD Align=Right><Input Type=Submit ID=btnSubmit Value="{t['rqxt_submit']}"></TD>
\t</TR>
</Table>
</Form>
""" + self.tail()
        return self.crlf(body)

    def issued(self, reqid, nrenewals, variant):
        t = self.t
        down = scripted = ""
        if variant in ("both", "downlevel"):
            down = f"""
\t<TD><Font ID=locDwnld1Font Face="Arial">
\t\t<LocID ID=locDownloadCert1>{t['dl_cert1']}</LocID><A Href="certnew.cer?ReqID={reqid}&amp;Enc=bin"><LocID ID=locDerEnc1>{t['der1']}</LocID></A><LocID ID=locSep1> {t['or']} </LocID><A Href="certnew.cer?ReqID={reqid}&amp;Enc=b64"><LocID ID=locB64Enc1>{t['b641']}</LocID></A><BR>
\t\t<LocID ID=locDownloadCertChain1>{t['dl_chain1']}</LocID><A Href="certnew.p7b?ReqID={reqid}&amp;Enc=bin"><LocID ID=locDerEnc2>{t['der1']}</LocID></A><LocID ID=locSep2> {t['or']} </LocID><A Href="certnew.p7b?ReqID={reqid}&amp;Enc=b64"><LocID ID=locB64Enc2>{t['b641']}</LocID></A>
\t\t</Font>
\t</TD>
"""
        if variant in ("both", "scripted"):
            scripted = f"""
\t<TD><Font ID=locDwnld3Font Face="Arial">
\t\t<A Href="#" OnContextMenu="return false;" OnClick="handleGetCert();return false;"><LocID ID=locDownloadCert3>{t['dl_cert3']}</LocID></A><BR>
\t\t<A Href="#" OnContextMenu="return false;" OnClick="handleGetChain();return false;"><LocID ID=locDownloadCertChain3>{t['dl_chain3']}</LocID></A>
\t\t</Font>
\t</TD>
"""
        rows = []
        for cell in (down, scripted):
            if cell:
                rows.append(f"""<TR>
\t<TD><Img Src="certspc.gif" Alt="" Height=1 Width=40></TD>
\t<TD><Img Src="certcert.gif" Alt="" Width=32 Height=24></TD>
\t<TD><Img Src="certspc.gif" Alt="" Height=1 Width=5></TD>
{cell}</TR>""")
        rows = "\n<TR><TD ColSpan=4 Height=4></TD></TR>\n".join(rows)
        body = self.head(t["issued_title"]) + f"""<P ID=locInfo> {t['issued_info']}</P>
<P><Form Name=UIForm>
<Table Border=0 CellSpacing=0 CellPadding=0>
<TR><TD></TD>
\t<TD></TD>
\t<TD></TD>
\t<TD><Font ID=locEncFont Face="Arial">
\t\t<Input Type=Radio ID=rbDerEnc Name=rbEncoding Checked><Label For=rbDerEnc ID=locDerEnc0>{t['der0']}</Label>
\t\t<LocID ID=locSep0>&nbsp;{t['or']}&nbsp;</LocID>
\t\t<Input Type=Radio ID=rbB64Enc Name=rbEncoding><Label For=rbB64Enc ID=locB64Enc0>{t['b640']}</Label>
\t\t</Font>
\t</TD>
</TR>
<TR><TD ColSpan=4 Height=4></TD></TR>
{rows}
</Table>
</P>
<P>
    <Span ID=spnNotTrusted Style="display:none"><LocID ID=locNotTrusted>
\t<Font Color=#FF0000>{t['not_trusted']}</Font>  {t['to_trust']}
\t<A Href="certnew.cer?ReqID=CACert&amp;Renewal={nrenewals}&amp;Mode=inst&amp;Enc=b64">{t['install_ca']}</A>
\t</LocID></Span>
</P>
</Form>"""
        scripts = "<!-- no scripts -->"
        if scripted:
            scripts = f"""<Script Language="JavaScript">
\t//----------------------------------------------------------------
\t// Get the requested cert
\tfunction handleGetCert() {{
\t\tlocation="certnew.cer?ReqID={reqid}&"+getEncoding();
\t}}
\t//----------------------------------------------------------------
\t// Get the requested cert chain
\tfunction handleGetChain() {{
\t\tlocation="certnew.p7b?ReqID={reqid}&"+getEncoding();
\t}}
\t//----------------------------------------------------------------
\t// Return the encoding parameter based upon the radio button
\tfunction getEncoding() {{
\t\tif (true==document.UIForm.rbEncoding[0].checked) {{
\t\t\treturn "Enc=bin";
\t\t}} else {{
\t\t\treturn "Enc=b64";
\t\t}}
\t}}
</Script>"""
        return self.crlf(body + self.tail(scripts))

    def pending(self, reqid):
        t = self.t
        body = self.head(t["pending_title"]) + f"""<P ID=locPending> {t['pending_text']} </P>
<P ID=locReqID> {t['reqid'].format(n=reqid)} </P>
<P ID=locReturn> {t['pending_return']} </P>
<P ID=locNote><Font Size=-1><I> {t['pending_note']} </I></Font></P>
"""
        scripts = f"""<Script Language="JavaScript">
\tvar nReqId = {reqid};
</Script>"""
        return self.crlf(body + self.tail(scripts))

    def denied(self, reqid, message):
        t = self.t
        rid = ""
        if reqid is not None:
            rid = f"<P ID=locReqID> {t['reqid'].format(n=reqid)} </P>\n"
        body = self.head(t["denied_title"]) + f"""<P ID=locDenied> {t['denied_text']} </P>
{rid}<P ID=locDispMsg> {t['disp_msg_is'].format(m=html.escape(message, quote=False))} </P>
"""
        return self.crlf(body + self.tail())

    def error(self, mode, disp, disp_msg, result, last, com=""):
        """The error layout: values on the line after their label,
        indented by two TABs."""
        t = self.t
        if mode == "newreq":
            mode_line = f"newreq <LocID ID=locModeSpacer>-</LocID> <LocID ID=locModeNewReq>{t['mode_newreq']}</LocID>"
        elif mode == "carc":
            mode_line = f" <LocID ID=locModeSpacer>-</LocID> <LocID ID=locModeCaInfo>{t['mode_carc']}</LocID>"
        else:
            mode_line = f" <LocID ID=locModeSpacer>-</LocID> <LocID ID=locModeCertFetch>{t['mode_fetch']}</LocID>"
        body = self.head(t["error_title"]) + f"""
<P ID=locContactAdmin>{t['contact_assist']}
</P>

<!-- Advanced info -->

<DL><DD>
\t<DL>
\t<DT ID=locModeLabel><Font Size=-1><B>{t['lbl_mode']}</B></Font></DT><DD>
\t\t{mode_line}
\t</DD>
\t<DT ID=locDispLabel><Font Size=-1><B>{t['lbl_disp']}</B></Font></DT><DD>
\t\t{disp} <LocID ID=locDispSpacer>-</LocID> <LocID ID=locDispUnknown>{t['disp_unknown']}</LocID>
\t</DD>
\t<DT ID=locDispMsgLabel><Font Size=-1><B>{t['lbl_dispmsg']}</B></Font></DT><DD>
\t\t{html.escape(disp_msg, quote=False)}
\t</DD>
\t<DT ID=locResultLabel><Font Size=-1><B>{t['lbl_result']}</B></Font></DT><DD>
\t\t{html.escape(result, quote=False)}
\t</DD>
\t<DT ID=locComInfoLabel><Font Size=-1><B>{t['lbl_com']}</B></Font></DT><DD>
\t\t{html.escape(com, quote=False)}
\t</DD>
\t<DT ID=locLastStatLabel><Font Size=-1><B>{t['lbl_last']}</B></Font></DT><DD>
\t\t{html.escape(last, quote=False)}
\t</DD>
\t<DT ID=locSugCauseLabel><Font Size=-1><B>{t['lbl_cause']}</B></Font></DT><DD>
\t\t<LocID ID=locSugCauseUnknown>{t['no_sugg']}</LocID>
\t</DD></DL>
</DD></DL>
"""
        return self.crlf(body + self.tail())

    def carc(self, ca_name, nrenewals):
        t = self.t
        opts = []
        for i in range(nrenewals + 1):
            k = nrenewals - i
            label = t["carc_current"] if i == 0 else t["carc_previous"]
            shown = self.ca if k == 0 else "%s(%d)" % (self.ca, k)
            sel = " Selected" if i == 0 else ""
            opts.append(f'\t\t\t\t<Option Value="{i}"{sel}><LocID ID=locCurCertEntry>{label}</LocID> <LocID ID=locCaNameNoRen1>[{shown}]</LocID>')
        options = "\n".join(opts)
        crl = ",\n\t\t".join("3" for _ in range(nrenewals + 1))
        body = self.head(t["carc_title"], "locPageTitle2").replace(
            "\n<P ID=locPageTitle2>", "\n<Form Name=UIForm>\n<P ID=locPageTitle2>", 1) + f"""
<P>
    <LocID ID=locInstallNN>
    {t['carc_install']}
    <A Href="certnew.cer?ReqID=CACert&amp;Renewal={nrenewals}&amp;Mode=inst&amp;Enc=b64">{t['install_ca']}</A>.
    </LocID>
<P>
<LocID ID=locPrompt>{t['carc_prompt']}</LocID>
<Table Border=0 CellSpacing=0 CellPadding=0>
\t<TR>
\t\t<TD ID=locCaCertHead ColSpan=3><Font ID=Font_lbCaID Face="Arial" Size=-1><BR><Label For=lbCaID ID=Lable_lbCaID><B>{t['carc_cacert']}</B></Label></Font></TD>
\t</TR>
\t<TR><TD ColSpan=3 BgColor=#008080><Img Src="certspc.gif" Alt="" Height=2 Width=1></TD></TR>
\t<TR>
\t\t<TD Align=Right VAlign=Top ID=locCaCertLabel></TD>
\t\t<TD><Select Size=4 Name=lbCaInstance ID=lbCaID>
{options}
\t\t\t</Select>
\t\t</TD>
\t</TR>
\t<TR>
\t\t<TD ID=locEncodingHead ColSpan=3><Font Face="Arial" Size=-1><BR><B>{t['carc_encoding']}</B></Font></TD>
\t</TR>
\t<TR><TD ColSpan=3 BgColor=#008080><Img Src="certspc.gif" Alt="" Height=2 Width=1></TD></TR>
\t<TR><TD></TD>
\t\t<TD><Font ID=locEncDerFont Face="Arial">
\t\t\t<Input Type=Radio ID=rbDerEnc Name=rbEncoding Checked><Label For=rbDerEnc ID=locDerEnc0>{t['carc_der']}</Label>
\t\t\t</Font>
\t\t</TD>
\t</TR>
\t<TR><TD></TD>
\t\t<TD><Font ID=locEncB64Font Face="Arial">
\t\t\t<Input Type=Radio ID=rbB64Enc Name=rbEncoding><Label For=rbB64Enc ID=locB64Enc0>{t['carc_b64']}</Label>
\t\t\t</Font>
\t\t</TD>
\t</TR>
</Table>
<Table CellSpacing=0 CellPadding=0>
\t<TR><TD></TD>
\t\t<TD><Font ID=locInstCaCFont Face="Arial"><A Href="#" OnClick="handleInstCert();return false;"><LocID ID=locInstallCert>{t['carc_inst']}</LocID></A></Font></TD>
\t</TR>
\t<TR><TD></TD>
\t\t<TD><Font ID=locDlCaCFont2 Face="Arial"><A Href="#" OnClick="handleGetCert();return false;"><LocID ID=locDownloadCert2>{t['carc_dl']}</LocID></A></Font></TD>
\t</TR>
\t<TR><TD></TD>
\t\t<TD><Font ID=locDlCaCpFont2 Face="Arial"><A Href="#" OnClick="handleGetChain();return false;"><LocID ID=locDownloadCertChain2>{t['carc_chain']}</LocID></A></Font></TD>
\t</TR>
\t<TR><TD></TD>
\t\t<TD><Font ID=locDlBaseCrlFont2 Face="Arial"><A Href="#" OnClick="handleGetBaseCrl();return false;"><LocID ID=locDownloadBaseCRL2>{t['carc_crl']}</LocID></A></Font></TD>
\t</TR>
</Table>
<BR>
</Form>"""
        scripts = f"""<Script Language="JavaScript">
\t//================================================================
\t// PAGE GLOBAL VARIABLES

\t// constants
\tvar CRL_AVAILABLE=3; // == CA_DISP_VALID

\t// CA state information
\tvar nRenewals={nrenewals};
\tvar rgCrlState=new Array(
\t\t{crl}
\t\t);

\t//================================================================
\t// LINK HANDLERS

\t//----------------------------------------------------------------
\t// Get the requested cert
\tfunction handleGetCert() {{
\t\tlocation="certnew.cer?ReqID=CACert&Renewal="+getChosenRenewal()+"&"+getEncoding();
\t}}
\t//----------------------------------------------------------------
\t// Install the requested cert
\tfunction handleInstCert() {{
\t\tlocation="certnew.cer?ReqID=CACert&Renewal="+getChosenRenewal()+"&Mode=inst&Enc=b64";
\t}}
\t//----------------------------------------------------------------
\t// Get the requested certificate chain
\tfunction handleGetChain() {{
\t\tlocation="certnew.p7b?ReqID=CACert&Renewal="+getChosenRenewal()+"&"+getEncoding();
\t}}
\t//----------------------------------------------------------------
\t// Get the nearest valid Base CRL
\tfunction handleGetBaseCrl() {{
\t\tvar nSource=getChosenRenewal();
\t\twhile (nSource>0 && CRL_AVAILABLE!=rgCrlState[nSource]) {{
\t\t\tnSource--;
\t\t}}
\t\tlocation="certcrl.crl?Type=base&Renewal="+nSource+"&"+getEncoding();
\t}}
\t//----------------------------------------------------------------
\t// Return the renewal # of the currently chosen cert
\tfunction getChosenRenewal() {{
\t\treturn nRenewals-document.UIForm.lbCaInstance[document.UIForm.lbCaInstance.selectedIndex].value;
\t}}
\t//----------------------------------------------------------------
\t// Return the encoding parameter based upon the radio button
\tfunction getEncoding() {{
\t\tif (true==document.UIForm.rbEncoding[0].checked) {{
\t\t\treturn "Enc=bin";
\t\t}} else {{
\t\t\treturn "Enc=b64";
\t\t}}
\t}}
</Script>"""
        return self.crlf(body + self.tail(scripts))


# IIS's generic 401 page (nokia adcs-sim unauth.tmpl), used for the anonymous
# challenge and for rejected credentials alike.
PAGE_401 = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>
<style type="text/css">
<!--
body{margin:0;font-size:.7em;font-family:Verdana, Arial, Helvetica, sans-serif;background:#EEEEEE;}
fieldset{padding:0 15px 10px 15px;}
h1{font-size:2.4em;margin:0;color:#FFF;}
h2{font-size:1.7em;margin:0;color:#CC0000;}
h3{font-size:1.2em;margin:10px 0 0 0;color:#000000;}
#header{width:96%;margin:0 0 0 0;padding:6px 2% 6px 2%;font-family:"trebuchet MS", Verdana, sans-serif;color:#FFF;
background-color:#555555;}
#content{margin:0 0 0 2%;position:relative;}
.content-container{background:#FFF;width:96%;margin-top:8px;padding:10px;position:relative;}
-->
</style>
</head>
<body>
<div id="header"><h1>Server Error</h1></div>
<div id="content">
 <div class="content-container"><fieldset>
  <h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2>
  <h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3>
 </fieldset></div>
</div>
</body>
</html>
""".replace("\n", "\r\n").encode()

PAGE_404 = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>404 - File or directory not found.</title>
</head>
<body>
<div id="header"><h1>Server Error</h1></div>
<div id="content">
 <div class="content-container"><fieldset>
  <h2>404 - File or directory not found.</h2>
  <h3>The resource you are looking for might have been removed, had its name changed, or is temporarily unavailable.</h3>
 </fieldset></div>
</div>
</body>
</html>
""".replace("\n", "\r\n").encode()


# --- HTTP ----------------------------------------------------------------------

class Dropped(Exception):
    """The answer was cut on purpose; the connection is closed."""


class Handler(BaseHTTPRequestHandler):
    """One instance per TCP connection: NTLM state is connection-bound."""

    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120

    def setup(self):
        # The TLS handshake runs here, in the connection's thread.
        self.request.settimeout(self.timeout)
        self.request = self.server.ssl_ctx.wrap_socket(self.request,
                                                       server_side=True)
        super().setup()
        self.ntlm_challenge = None
        self.conn_user = None
        with self.server.state.lock:
            self.server.state.connections += 1

    def version_string(self):
        return self.server_version

    def finish(self):
        try:
            super().finish()
        finally:
            try:
                self.request.close()
            except OSError:
                pass

    def log_message(self, fmt, *args):
        pass    # One line per answer comes from send().

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_HEAD(self):
        self.dispatch("HEAD")

    # -- plumbing --

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body, ctype="text/html", headers=(), page=None,
             iis=True):
        """Sends one answer with Content-Length; may cut it (drop switch)."""
        self.send_response(status)
        if iis:
            self.send_header("Cache-Control", "private")
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        if iis:
            # IIS hands out an ASP session on the first ASP answer.
            name = self.server.cookie_name
            if page and name not in self.headers.get("Cookie", ""):
                if page.endswith(".asp") or page in ("certnew.cer", "certnew.p7b"):
                    self.send_header("Set-Cookie", "%s=%s; secure; path=/" % (
                        name,
                        "".join(random.choice(string.ascii_uppercase)
                                for _ in range(24))))
            self.send_header("X-Powered-By", "ASP.NET")
        self.send_header("Content-Length", str(len(body)))
        drop = status == 200 and page is not None and self.should_drop(page)
        if drop:
            self.send_header("Connection", "close")
        self.end_headers()
        log('%s:%d "%s %s" %d %d user=%s%s' % (
            self.client_address[0], self.client_address[1], self.command,
            self.path[:200], status, len(body), self.conn_user or self.who or "-",
            " DROPPED" if drop else ""))
        if drop:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise Dropped()
        if self.command != "HEAD":
            self.wfile.write(body)

    def should_drop(self, page):
        st = self.server.state
        with st.lock:
            drop = st.config.get("drop")
            if not drop:
                return False
            if isinstance(drop, str):
                return drop.lower() == page
            if isinstance(drop, list):
                return page in [d.lower() for d in drop]
            for k, v in drop.items():
                if k.lower() == page:
                    done = st.drops_done.get(page, 0)
                    if v is None or done < int(v):
                        st.drops_done[page] = done + 1
                        return True
            return False

    def send_json(self, status, obj):
        body = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
        self.send(status, body, "application/json", iis=False)

    # -- auth --

    def challenge_headers(self, cfg):
        hdrs = []
        if cfg["auth"] == "ntlm":
            hdrs += [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")]
        if cfg["auth"] == "basic" or cfg["basic_enabled"]:
            host = (self.headers.get("Host") or "localhost").rsplit(":", 1)[0]
            hdrs.append(("WWW-Authenticate", 'Basic realm="%s"' % host))
        return hdrs

    def authenticate(self, cfg, page):
        """The caller's user name, or None after a 401 was sent."""
        st = self.server.state
        if cfg["auth"] == "anonymous":
            return "anonymous"
        hdr = self.headers.get("Authorization", "")
        scheme, _, cred = hdr.strip().partition(" ")
        scheme = scheme.lower()
        cred = cred.strip()
        windows = cfg["auth"] == "ntlm"
        basic = cfg["auth"] == "basic" or cfg["basic_enabled"]
        if not hdr:
            if self.conn_user and windows:
                return self.conn_user      # NTLM authenticated this connection.
            with st.lock:
                st.auth["anonymous_401"] += 1
            self.send(401, PAGE_401, headers=self.challenge_headers(cfg), page=page)
            return None
        if scheme == "basic" and basic:
            try:
                user, _, pw = base64.b64decode(cred).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, pw = "", None
            self.who = user
            want = st.users.get(bare_user(user).lower())
            if user and want is not None and want == pw:
                with st.lock:
                    st.auth["basic_ok"] += 1
                return user
            with st.lock:
                st.auth["basic_bad"] += 1
            return self.deny_credentials(cfg, page)
        if scheme in ("ntlm", "negotiate") and windows:
            try:
                token = base64.b64decode(cred)
            except ValueError:
                token = b""
            kind = ntlm_type(token)
            if kind == 1:
                self.ntlm_challenge = os.urandom(8)
                self.conn_user = None
                with st.lock:
                    st.ntlm["type1"] += 1
                    st.ntlm["type2"] += 1
                t2 = base64.b64encode(ntlm_type2(token, self.ntlm_challenge)).decode()
                self.send(401, PAGE_401, page=page, headers=[
                    ("WWW-Authenticate", "%s %s" % (
                        "NTLM" if scheme == "ntlm" else "Negotiate", t2))])
                return None
            if kind == 3:
                return self.ntlm_type3(cfg, token, page)
        # Kerberos, a disabled scheme or garbage: as IIS, 401 again.
        return self.deny_credentials(cfg, page)

    def ntlm_type3(self, cfg, token, page):
        st = self.server.state
        if self.ntlm_challenge is None:
            # A Type 3 on a connection that got no challenge.
            with st.lock:
                st.ntlm["type3_no_challenge"] += 1
            return self.deny_credentials(cfg, page)
        challenge, self.ntlm_challenge = self.ntlm_challenge, None
        try:
            user, domain, nt, _ = ntlm_parse_type3(token)
        except (ValueError, struct.error):
            user, domain, nt = "", "", b""
        self.who = "%s\\%s" % (domain, user) if domain else user
        want = st.users.get(bare_user(user).lower()) if user else None
        ok = want is not None
        if ok and cfg["ntlm_verify_password"] and len(nt) > 24:
            ok = ntlmv2_ok(user, domain, want, challenge, nt)
        if not ok:
            with st.lock:
                st.ntlm["type3_bad"] += 1
            return self.deny_credentials(cfg, page)
        with st.lock:
            st.ntlm["type3_ok"] += 1
            st.ntlm["handshakes"] += 1
        self.conn_user = self.who
        return self.conn_user

    def deny_credentials(self, cfg, page):
        """401.1: rejected credentials."""
        with self.server.state.lock:
            self.server.state.auth["bad_credentials_401"] += 1
        self.send(401, PAGE_401, headers=self.challenge_headers(cfg), page=page)
        return None

    # -- dispatch --

    def dispatch(self, method):
        self.who = None
        try:
            self._dispatch(method)
        except Dropped:
            pass
        except (ConnectionError, ssl.SSLError, socket.timeout) as e:
            log("%s:%d connection lost while answering %s: %s" % (
                self.client_address[0], self.client_address[1], self.path, e))
            self.close_connection = True

    def _dispatch(self, method):
        st = self.server.state
        body = self.read_body()
        raw, _, query = self.path.partition("?")
        path = urllib.parse.unquote(raw)
        lpath = path.lower()
        if lpath.startswith("/_fake/"):
            return self.control(method, lpath, body)
        cfg = st.cfg()
        if lpath == "/certsrv":
            return self.send(301, b"<head><title>Document Moved</title></head>\r\n"
                             b'<body><h1>Object Moved</h1>This document may be '
                             b'found <a HREF="/certsrv/">here</a></body>',
                             headers=[("Location", "/certsrv/")])
        if not lpath.startswith("/certsrv/"):
            return self.send(404, PAGE_404)
        page = lpath[len("/certsrv/"):] or "default.asp"
        st.count(st.pages, page)
        user = self.authenticate(cfg, page)
        if user is None:
            return
        st.count(st.pages_auth, page)
        self.who = user
        q = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            q.setdefault(k.lower(), v)
        form = {}
        if method == "POST":
            for k, v in urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                               keep_blank_values=True):
                form.setdefault(k.lower(), v)
        delay = cfg["delay_ms"]
        if isinstance(delay, dict):
            delay = delay.get(page, delay.get("*", 0))
        if delay:
            time.sleep(delay / 1000.0)
        cfg = st.cfg()     # The delay may have outlived a config change.
        pages = Pages(cfg["locale"], cfg["ca_name"])
        if page in ("default.asp", "certrqus.asp", "certckpn.asp", "certrqxt.asp"):
            if page == "default.asp":
                out = pages.home()
            elif page == "certrqus.asp":
                out = pages.rqus()
            elif page == "certckpn.asp":
                out = pages.ckpn()
            else:
                deny = {t.lower() for t in cfg["template_denied"]}
                out = pages.rqxt([t for t in cfg["templates"]
                                  if t.lower() not in deny])
            return self.send(200, out, page=page)
        if page == "certfnsh.asp":
            return self.certfnsh(cfg, pages, form if method == "POST" else q,
                                 page)
        if page in ("certnew.cer", "certnew.p7b"):
            return self.certnew(cfg, pages, q, page)
        if page == "certcarc.asp":
            if cfg["ca_down"]:
                return self.send(200, self.ca_down_page(pages, "carc"), page=page)
            return self.send(200, pages.carc(cfg["ca_name"], st.ca.nrenewals),
                             page=page)
        return self.send(404, PAGE_404, page=page)

    # -- pages with logic --

    def ca_down_page(self, pages, mode):
        t = pages.t
        rpc = "%s 0x800706ba (WIN32: 1722 RPC_S_SERVER_UNAVAILABLE)" % t["e_rpc"]
        return pages.error(mode, DISP_INCOMPLETE, t["e_ca_down"], rpc, rpc,
                           com="CCertRequest::Submit: " + rpc
                           if mode == "newreq" else "CCertRequest: " + rpc)

    def mangled(self, how, page):
        """Answers a submission the way a broken CA or proxy might."""
        if how == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            raise Dropped()
        if how == "garbage":
            body = os.urandom(2048)
        elif how == "huge":
            body = b"<html><body>" + b"x" * (4 * 1024 * 1024) + b"</body></html>"
        else:
            body = (b"<html><head><title>Welcome</title></head><body>"
                    b"<h1>It works!</h1></body></html>")
        return self.send(200, body, page=page)

    def certfnsh(self, cfg, pages, form, page):
        st = self.server.state
        t = pages.t
        if not form:
            # libcurl's NTLM Type 1 POST carries no body; anything that gets
            # here without one is no submission either.
            return self.send(200, pages.error(
                "newreq", DISP_INCOMPLETE, t["e_param"],
                "%s 0x80070057 (WIN32: 87 ERROR_INVALID_PARAMETER)" % t["e_param"],
                "%s 0x80070057 (WIN32: 87 ERROR_INVALID_PARAMETER)" % t["e_param"]),
                page=page)
        with st.lock:
            st.submissions += 1
        missing = [f for f in ("mode", "certrequest", "certattrib")
                   if f not in form]
        if missing or form["mode"].lower() != "newreq":
            msg = "%s 0x80070057 (WIN32: 87 ERROR_INVALID_PARAMETER)" % t["e_param"]
            return self.send(200, pages.error("newreq", DISP_INCOMPLETE,
                                              t["e_param"], msg, msg), page=page)
        if cfg["ca_down"]:
            return self.send(200, self.ca_down_page(pages, "newreq"), page=page)
        if cfg["mangle"]:
            return self.mangled(cfg["mangle"], page)
        attribs = {}
        for line in re.split(r"\r\n|\n|\r", form["certattrib"]):
            name, sep, value = line.partition(":")
            if sep:
                attribs.setdefault(name.strip().lower(), value.strip())
        template = attribs.get("certificatetemplate", "")
        parse_msg = "%s  %s 0x8009310b (ASN: 267 CRYPT_E_ASN1_BADTAG)" % (
            t["e_parsing"], t["e_badtag"])
        deny = str(cfg["deny"] or "").lower()
        if deny == "parse":
            return self.send(200, pages.denied(None, parse_msg), page=page)
        text = re.sub(r"-----(BEGIN|END)[^-]*-----", "", form["certrequest"])
        text = re.sub(r"\s+", "", text)
        try:
            der = base64.b64decode(text, validate=True)
            pre = st.ca.presigned.get(hashlib.sha256(der).hexdigest())
            if pre is not None:
                csr_pem, subject = pre[0], pre[1]
            else:
                csr_pem, subject = st.ca.csr_check(der, st.next_id)
        except (ValueError, RuntimeError) as e:
            log("certfnsh.asp: request unreadable: %s" % str(e)[:200])
            return self.send(200, pages.denied(None, parse_msg), page=page)
        rec = dict(state="pending", template=template, subject=subject,
                   presigned=pre,
                   user=self.who, attributes=form["certattrib"],
                   csr_pem=csr_pem, disposition=DISP_UNDER_SUBMISSION,
                   code=None, message=None)
        known = {x.lower() for x in cfg["templates"]}
        code = None
        if deny:
            code = int(deny, 16)
        elif template.lower() not in known and cfg["unknown_template_denies"]:
            code = 0x80094800
        elif template.lower() in {x.lower() for x in cfg["template_denied"]}:
            code = 0x80094012
        rec = st.new_request(**rec)
        rid = rec["id"]
        if code is not None:
            self.deny_request(rec, code, t)
            return self.send(200, pages.denied(rid, rec["message"]), page=page)
        if cfg["approval"] == "manual":
            return self.send(200, pages.pending(rid), page=page)
        try:
            self.issue_request(rec)
        except RuntimeError as e:
            log("certfnsh.asp: signing request %d failed: %s" % (rid, e))
            msg = "%s 0x80070057 (WIN32: 87 ERROR_INVALID_PARAMETER)" % t["e_param"]
            return self.send(200, pages.error("newreq", DISP_ERROR, msg, msg, msg),
                             page=page)
        return self.send(200, pages.issued(rid, st.ca.nrenewals,
                                           cfg["issued_page"]), page=page)

    def deny_request(self, rec, code, t=None):
        """Marks rec denied with code; message in the current locale."""
        st = self.server.state
        t = t or Pages(st.cfg()["locale"], "").t
        reason = t["e_unsupported_msg"].format(t=rec["template"]) \
            if code == 0x80094800 else t[CODES[code][1]]
        with st.lock:
            rec.update(state="denied", disposition=DISP_DENIED, code="0x%08x" % code,
                       message="%s  0x%08x, %s" % (t["denied_by_policy"], code, reason))

    def issue_request(self, rec):
        st = self.server.state
        if rec.get("presigned") is not None:
            der, gen = rec["presigned"][2], rec["presigned"][3]
        else:
            der, gen = st.ca.issue(rec["id"], rec["csr_pem"], rec["template"] or "")
        with st.lock:
            rec.update(state="issued", disposition=DISP_ISSUED, cert_der=der,
                       generation=gen)

    def certnew(self, cfg, pages, q, page):
        st = self.server.state
        t = pages.t
        enc_bin = q.get("enc", "b64").lower() == "bin"
        ua = self.headers.get("User-Agent", "")
        html_ct = cfg["ua_sensitive"] and not ua.startswith("Mozilla/")
        is_p7b = page == "certnew.p7b"
        ctype = "text/html" if html_ct else (
            "application/x-pkcs7-certificates" if is_p7b else "application/pkix-cert")
        ok = "%s 0x0 (WIN32: 0)" % t["ok"]
        if cfg["ca_down"]:
            return self.send(200, self.ca_down_page(pages, "fetch"), page=page)
        reqid = q.get("reqid", "")
        if reqid.lower() == "cacert":
            ren = q.get("renewal", str(st.ca.nrenewals))
            try:
                k = int(ren)
                if k < 0 or k > st.ca.nrenewals:
                    raise ValueError(ren)
            except ValueError:
                msg = "%s 0x80070057 (WIN32: 87 ERROR_INVALID_PARAMETER)" % t["e_param"]
                return self.send(200, pages.error("fetch", DISP_INCOMPLETE,
                                                  t["e_param"], msg, msg), page=page)
            ders = st.ca.chain_ders(k)
            if is_p7b:
                out = st.ca.p7b(ders)
            else:
                out = ders[0]
            if not enc_bin:
                out = pem_armour(out)
            return self.send(200, out, ctype, page=page)
        with st.lock:
            rec = None
            if re.fullmatch(r"\d+", reqid):
                rec = st.requests.get(int(reqid))
            rec = dict(rec) if rec else None
        empty = "%s %s" % (t["e_prop_empty"], hresult_text(0x80094004))
        if rec is None:
            return self.send(200, pages.error("fetch", DISP_INCOMPLETE,
                                              t["e_prop_empty"], empty, empty),
                             page=page)
        if rec["state"] == "pending":
            return self.send(200, pages.error("fetch", DISP_UNDER_SUBMISSION,
                                              t["under_submission"], ok, ok),
                             page=page)
        if rec["state"] == "denied":
            code = int(rec["code"], 16)
            reason = t[CODES[code][1]]
            last = "%s %s" % (reason, hresult_text(code))
            return self.send(200, pages.error("fetch", DISP_DENIED, rec["message"],
                                              ok, last), page=page)
        if is_p7b:
            out = st.ca.p7b([rec["cert_der"]] + st.ca.chain_ders(rec["generation"]))
        else:
            out = rec["cert_der"]
        if not enc_bin:
            out = pem_armour(out)
        return self.send(200, out, ctype, page=page)

    # -- control API --

    def control(self, method, lpath, body):
        st = self.server.state
        parts = [p for p in lpath.split("/") if p][1:]
        try:
            obj = json.loads(body) if body.strip() else {}
        except ValueError as e:
            return self.send_json(400, {"error": "body is not JSON: %s" % e})
        if parts == ["state"] and method == "GET":
            return self.send_json(200, st.snapshot())
        if parts == ["config"] and method == "GET":
            return self.send_json(200, st.cfg())
        if parts == ["config"] and method == "POST":
            try:
                return self.send_json(200, st.set_config(obj))
            except ValueError as e:
                return self.send_json(400, {"error": str(e)})
        if parts == ["reset"] and method == "POST":
            with st.lock:
                st.config = json.loads(json.dumps(st.defaults))
                st.drops_done = {}
            return self.send_json(200, st.cfg())
        if parts == ["presign"] and method == "POST":
            csrs = obj.get("csrs")
            if not isinstance(csrs, list) or not all(isinstance(c, str) for c in csrs):
                return self.send_json(400, {"error": "csrs must be a list of base64 strings"})
            try:
                for c in csrs:
                    st.ca.presign(base64.b64decode(c, validate=True))
            except (ValueError, RuntimeError) as e:
                return self.send_json(400, {"error": str(e)[:300]})
            return self.send_json(200, {"presigned": len(st.ca.presigned)})
        if parts == ["renew"] and method == "POST":
            n = st.ca.renew()
            log("CA renewed: generation %d" % n)
            return self.send_json(200, {"nrenewals": n})
        if len(parts) >= 2 and parts[0] == "requests" and parts[1].isdigit():
            with st.lock:
                rec = st.requests.get(int(parts[1]))
            if rec is None:
                return self.send_json(404, {"error": "no request %s" % parts[1]})
            if len(parts) == 2 and method == "GET":
                out = {k: v for k, v in rec.items()
                       if k not in ("cert_der", "csr_pem", "presigned")}
                out["csr_pem"] = rec["csr_pem"].decode()
                if rec.get("cert_der"):
                    out["cert_pem"] = pem_armour(rec["cert_der"]).decode()
                return self.send_json(200, out)
            if len(parts) == 3 and method == "POST" and parts[2] in ("issue", "deny"):
                if rec["state"] != "pending":
                    return self.send_json(409, {"error": "request %d is %s" % (
                        rec["id"], rec["state"])})
                if parts[2] == "issue":
                    try:
                        self.issue_request(rec)
                    except RuntimeError as e:
                        return self.send_json(500, {"error": str(e)})
                else:
                    try:
                        code = int(str(obj.get("code", "0x80094014")), 16)
                        if code not in CODES:
                            raise ValueError()
                    except ValueError:
                        return self.send_json(400, {"error": "code must be one of %s"
                                                    % ", ".join("0x%08x" % c for c in CODES)})
                    self.deny_request(rec, code)
                return self.send_json(200, {k: v for k, v in rec.items()
                                            if k not in ("cert_der", "csr_pem",
                                                         "presigned")})
        return self.send_json(404, {"error": "no such control call: %s %s"
                                    % (method, lpath)})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # IIS queues thousands of connections; Python's default of 5 would
    # turn a burst into SYN retransmits that no real CA causes.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ssl.SSLError, ConnectionError, socket.timeout, OSError)):
            log("%s:%d connection failed: %s" % (client_address[0],
                                                  client_address[1], e))
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="fake AD CS Web Enrollment server")
    ap.add_argument("--listen", required=True, help="HOST:PORT (port 0: any free)")
    ap.add_argument("--cert", required=True, help="TLS certificate (PEM, chain)")
    ap.add_argument("--key", required=True, help="TLS key (PEM)")
    ap.add_argument("--state-dir", required=True, help="CA material goes here")
    ap.add_argument("--ca-name", default="fake-CERTSRV-CA")
    ap.add_argument("--reqid-start", type=int, default=61108)
    ap.add_argument("--users", default="certuser:certpass")
    ap.add_argument("--auth", choices=("basic", "ntlm", "anonymous"), default="ntlm")
    ap.add_argument("--basic-enabled", action="store_true")
    ap.add_argument("--templates", default="WebServer,User,Machine")
    ap.add_argument("--nrenewals", type=int, default=0)
    ap.add_argument("--locale", choices=tuple(TEXT), default="en")
    ap.add_argument("--approval", choices=("auto", "manual"), default="auto")
    args = ap.parse_args()

    host, _, port = args.listen.rpartition(":")
    try:
        ca = CA(args.state_dir, args.ca_name, args.nrenewals)
    except (RuntimeError, OSError) as e:
        log("CA setup in %s failed: %s" % (args.state_dir, e))
        return 1
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        srv = Server((host or "127.0.0.1", int(port)), Handler)
    except OSError as e:
        log("bind %s failed: %s" % (args.listen, e))
        return 1
    srv.ssl_ctx = ctx
    srv.state = State(args, ca)
    srv.cookie_name = "ASPSESSIONID" + "".join(
        random.choice(string.ascii_uppercase) for _ in range(8))

    def stop(signum, frame):
        log("signal %d, shutting down" % signum)
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    h, p = srv.server_address[:2]
    print("%s: ready on %s:%d" % (PROG, h, p), flush=True)
    log("CA %r, %d renewal(s), state in %s" % (args.ca_name, ca.nrenewals, ca.dir))
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
