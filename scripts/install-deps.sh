#!/bin/sh
# Installs the Debian packages estrad needs to build, run and test, and only
# those that are missing.  Quiet when everything is already there, so the
# Makefile can call it before every run and check.
set -eu

packages="build-essential pkg-config libssl-dev openssl libevent-dev
libcurl4-openssl-dev curl libjansson-dev check libcrypt-dev
strongswan-pki libstrongswan-extra-plugins clang python3 certmonger
python3-prometheus-client"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "install-deps: missing packages:$missing (run as root)" >&2
		exit 1
	fi
else
	sudo=""
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
