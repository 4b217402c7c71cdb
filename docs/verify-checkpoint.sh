#!/bin/sh
# verify-checkpoint.sh KEY NOTE
#
# Verifies a votewatch checkpoint (GET /log/checkpoint) with nothing but
# the C2SP signed-note format (https://c2sp.org/signed-note), openssl (3.0
# or later, for Ed25519 and base64) and POSIX sed, awk, od, dd and tail: no
# votewatch code. An observer runs it on a saved checkpoint with the
# verifier key they pinned.
#
#   KEY   the verifier key, name+hash+base64(0x01 || Ed25519 public key)
#         (GET /api/v1/checkpoint/key), or a file holding it
#   NOTE  the checkpoint as served: its text, a blank line, signature lines
#
# Prints OK and exits 0 when a signature line by KEY verifies over the
# note's text; exits 1 otherwise (2 for a usage error). It checks the
# log's signature only, not the witnesses' cosignature lines after it,
# nor what the text states (the tree size and root, the tallies digest):
# that takes consistency proofs and a recount (docs/observer.md).
set -eu

fail() {
	echo "verify-checkpoint: $*" >&2
	exit 1
}

[ $# -eq 2 ] || {
	echo "usage: verify-checkpoint.sh KEY|KEYFILE NOTEFILE" >&2
	exit 2
}
key=$1
note=$2
[ -f "$note" ] || fail "no such note file: $note"
if [ -f "$key" ]; then
	key=$(sed -n '1p' "$key")
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

# hex FILE: the file's bytes as lowercase hex, no spaces.
hex() {
	od -An -v -tx1 "$1" | tr -d ' \n'
}

# The key: name+hash+base64. The name has no "+"; the base64 may.
name=${key%%+*}
rest=${key#*+}
keyhash=${rest%%+*}
keyb64=${rest#*+}
[ -n "$name" ] && [ "$rest" != "$key" ] && [ "$keyb64" != "$rest" ] || fail "not a verifier key: name+hash+base64"
printf '%s' "$keyb64" | openssl base64 -d -A >"$tmp/key" 2>/dev/null || fail "the key's base64 does not decode"
[ "$(wc -c <"$tmp/key" | tr -d ' ')" -eq 33 ] || fail "the key is not 33 bytes (0x01 and an Ed25519 public key)"
[ "$(dd if="$tmp/key" bs=1 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 01 ] || fail "the key is not an Ed25519 key (algorithm byte 0x01)"

# The key hash: the first 4 bytes of SHA-256(name || "\n" || 0x01 || key).
{
	printf '%s\n' "$name"
	cat "$tmp/key"
} >"$tmp/hashed"
openssl dgst -sha256 -binary "$tmp/hashed" >"$tmp/sha"
dd if="$tmp/sha" of="$tmp/id" bs=1 count=4 2>/dev/null
id=$(hex "$tmp/id")
[ "$id" = "$keyhash" ] || fail "the key's hash field $keyhash is not its hash $id"

# The public key as DER (SubjectPublicKeyInfo): the fixed Ed25519 prefix,
# hex 302a300506032b6570032100, then the 32 key bytes.
printf '\060\052\060\005\006\003\053\145\160\003\041\000' >"$tmp/pub.der"
tail -c 32 "$tmp/key" >>"$tmp/pub.der"

# The text: every line before the first blank line, each with its newline
# (the signed bytes end with the text's final newline). The signatures:
# the lines after it.
sed '/^$/,$d' "$note" >"$tmp/text"
sed '1,/^$/d' "$note" >"$tmp/sigs"
[ -s "$tmp/text" ] && [ -s "$tmp/sigs" ] || fail "not a signed note: no text, blank line and signatures"
# After the blank line only signature lines: anything else (a line
# appended after the signatures, a second blank line) is not signed, and a
# reader of the file could take it for the text.
if LC_ALL=C grep -v -q "$(printf '^\342\200\224 [^ +]* [A-Za-z0-9+/]*=*$')" "$tmp/sigs"; then
	fail "a line after the blank line is not a signature line: unsigned content"
fi

# Each signature line is "— <name> <base64(key hash || signature)>": an
# EM DASH (U+2014, octal 342 200 224 in UTF-8) and a space first.
awk -v prefix="$(printf '\342\200\224 %s ' "$name")" \
	'index($0, prefix) == 1 { print substr($0, length(prefix) + 1) }' "$tmp/sigs" >"$tmp/mine"
[ -s "$tmp/mine" ] || fail "no signature by $name"
while IFS= read -r sig; do
	printf '%s' "$sig" | openssl base64 -d -A >"$tmp/sig" 2>/dev/null || continue
	[ "$(wc -c <"$tmp/sig" | tr -d ' ')" -eq 68 ] || continue
	dd if="$tmp/sig" of="$tmp/sigid" bs=1 count=4 2>/dev/null
	[ "$(hex "$tmp/sigid")" = "$keyhash" ] || continue
	tail -c 64 "$tmp/sig" >"$tmp/sig.raw"
	if openssl pkeyutl -verify -pubin -keyform DER -inkey "$tmp/pub.der" -rawin \
		-in "$tmp/text" -sigfile "$tmp/sig.raw" >/dev/null 2>&1; then
		echo OK
		exit 0
	fi
done <"$tmp/mine"
fail "no signature by $name ($keyhash) verifies over the note's text"
