#!/usr/bin/env bash
# Regenerates the test PKI used by the TLS tests (feeds_tests: Tls.*). Test-only keys: never trust
# this CA anywhere else. Valid certificates run for 100 years; expired.pem ended in 2021.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem ./*.key ./*.srl ./*.cnf index.txt* serial*
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=Laminator Test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
key other-ca.key
openssl req -x509 -new -key other-ca.key -days "$days" -subj "/CN=Some Other CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out other-ca.pem

# leaf NAME SAN [CA]
leaf() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "${4:-ca}.pem" -CAkey "${4:-ca}.key" -CAcreateserial \
    -days "$days" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf server localhost "DNS:localhost,IP:127.0.0.1"
leaf other-host other.example "DNS:other.example"
leaf unknown-ca localhost "DNS:localhost,IP:127.0.0.1" other-ca

# An expired certificate needs explicit dates: `openssl ca` takes them.
key expired.key
openssl req -new -key expired.key -subj "/CN=localhost" -out expired.csr
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = index.txt
serial = serial
new_certs_dir = .
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[any]
commonName = supplied
[leaf]
subjectAltName = DNS:localhost,IP:127.0.0.1
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
CNF
: > index.txt
echo 1000 > serial
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
  -startdate 20200101000000Z -enddate 20210101000000Z -out expired.pem 2>/dev/null
rm -f expired.csr ca.cnf index.txt* serial* ./*.srl 10*.pem
