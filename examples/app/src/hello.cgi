#!/bin/sh
# GET /cgi-bin/hello: the greeting over HTTP (busybox httpd runs it as CGI), and what
# the `words` service answers when it runs beside this one (compose.yaml).
printf 'Content-Type: text/plain\r\n\r\n'
/app/hello
printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 words 9000 2>/dev/null | tail -1
exit 0
