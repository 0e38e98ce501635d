#!/bin/sh
# Turns a text file (stdin) into a C file defining `const char NAME[]` with its
# contents, so pages like the console are served from the binary. Backslashes,
# quotes and question marks (no trigraphs) are escaped.
set -eu
echo "/* Generated from a text file by services/app/embed_text.sh: do not edit. */"
echo "const char $1[] ="
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$/\\n"/'
echo ";"
