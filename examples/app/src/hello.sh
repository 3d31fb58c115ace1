#!/bin/sh
# Says who and where it runs, then shows what the build stage made.
cd /app
echo "$GREETING: $(hostname), user $(id -un) (uid $(id -u)), in $(pwd)"
echo "build stage: $(cat /app/build-info.txt)"
echo "sorted words: $(cat /app/words.txt)"
