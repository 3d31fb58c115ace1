#!/bin/sh
# GET /cgi-bin/hello: the greeting over HTTP (busybox httpd runs it as CGI).
printf 'Content-Type: text/plain\r\n\r\n'
exec /app/hello
