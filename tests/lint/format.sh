#!/bin/bash
# Every tracked .c/.h file is formatted as .clang-format says (`make lint`).
cd "$(dirname "$0")/../.." || exit 1
if ! command -v clang-format >/dev/null; then
	echo "SKIP clang-format is not installed"; exit 0
fi
if [ ! -d .git ] && ! git rev-parse --git-dir >/dev/null 2>&1; then
	files=$(find . -path ./build -prune -o \( -name '*.c' -o -name '*.h' \) -print | grep -v '^./build')
else
	files=$(git ls-files '*.c' '*.h')
fi
# shellcheck disable=SC2086
if out=$(clang-format --dry-run --Werror $files 2>&1); then
	echo "PASS every .c/.h file is formatted per .clang-format"
else
	echo "$out" | head -40
	echo "FAIL every .c/.h file is formatted per .clang-format (run: make format)"
	exit 1
fi
