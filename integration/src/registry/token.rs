//! A token service for distribution's `auth: token`: basic auth in, a JWT out (RS256,
//! signed by openssl with a key and self-signed certificate made for the test, the
//! certificate in the `x5c` header and in the registry's root bundle).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::json;

pub const SERVICE: &str = "skiff-test-registry";
pub const ISSUER: &str = "skiff-test-issuer";

/// Makes the key and certificate in `dir`, starts the service; returns its realm URL.
pub fn serve(dir: &Path, user: &str, password: &str) -> Result<String> {
    let key = dir.join("token-key.pem");
    let cert = dir.join("token-cert.pem");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=skiff-test-token"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("cannot run openssl")?;
    if !out.status.success() {
        bail!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The PEM body is the base64 of the DER certificate, which is what x5c holds.
    let der_b64: String = std::fs::read_to_string(&cert)?
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let expected = format!(
        "Basic {}",
        base64(format!("{user}:{password}").as_bytes(), false)
    );
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let realm = format!("http://{}/token", listener.local_addr()?);
    let user = user.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &expected, &user, &key, &der_b64);
        }
    });
    Ok(realm)
}

fn answer(stream: TcpStream, expected: &str, user: &str, key: &PathBuf, x5c: &str) -> Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") && v.trim() == expected {
                authorized = true;
            }
        }
    }
    let mut out = stream;
    if !authorized {
        out.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let path = request.split_whitespace().nth(1).unwrap_or_default();
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let access: Vec<_> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .flat_map(|s| s.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|scope| {
            let mut parts = scope.rsplitn(2, ':');
            let actions = parts.next()?;
            let (kind, name) = parts.next()?.split_once(':')?;
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = json!({
        "iss": ISSUER, "sub": user, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64(&serde_json::to_vec(&header)?, true),
        base64(&serde_json::to_vec(&claims)?, true)
    );
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = openssl.stdin.take() {
        stdin.write_all(signing_input.as_bytes())?;
    }
    let signature = openssl.wait_with_output()?.stdout;
    let token = format!("{signing_input}.{}", base64(&signature, true));
    let body = serde_json::to_vec(&json!({"token": token, "expires_in": 300}))?;
    out.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )?;
    out.write_all(&body)?;
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Base64, URL-safe without padding for JWTs, standard with padding otherwise.
fn base64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}
