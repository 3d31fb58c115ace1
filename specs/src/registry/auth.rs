//! The registry token flow: a 401's `WWW-Authenticate` challenge, and a bearer token from
//! the realm it names (with basic credentials when we have them, anonymous otherwise).

use std::io::Read;

use super::credentials::Credentials;

/// Largest token reply read.
const MAX_TOKEN_REPLY: u64 = 1 << 20;

/// What a 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="..."` or `Bearer realm="...",service="...",scope="..."`.
pub(crate) fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!("unsupported scheme {scheme:?}"));
    }
    let params = parse_params(rest)?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let realm = get("realm").ok_or("bearer challenge without a realm")?;
    if !realm.starts_with("https://") && !realm.starts_with("http://") {
        return Err(format!("realm {realm:?} is not an http(s) URL"));
    }
    Ok(Challenge::Bearer {
        realm,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v",k2=v2` (quoted values may hold commas and `\"`).
fn parse_params(mut s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if s.is_empty() {
            return Ok(out);
        }
        let (key, rest) = s.split_once('=').ok_or("parameter without =")?;
        let rest = rest.trim_start();
        let (value, rest) = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or("unterminated quoted value")?;
            (value, &quoted[end + 1..])
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            (rest[..end].trim().to_owned(), &rest[end..])
        };
        out.push((key.trim().to_owned(), value));
        s = rest;
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GETs a token from `realm` for `scopes`.
pub(crate) fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credentials: Option<&Credentials>,
) -> Result<String, String> {
    let mut query = Vec::new();
    if let Some(s) = service {
        query.push(format!("service={}", encode(s)));
    }
    for s in scopes {
        query.push(format!("scope={}", encode(s)));
    }
    let sep = if realm.contains('?') { '&' } else { '?' };
    let url = if query.is_empty() {
        realm.to_owned()
    } else {
        format!("{realm}{sep}{}", query.join("&"))
    };
    let mut request = agent.get(&url);
    if let Some(c) = credentials {
        request = request.header("authorization", c.basic_header());
    }
    let reply = request
        .call()
        .map_err(|e| format!("token service {realm}: {e}"))?;
    let status = reply.status().as_u16();
    let mut text = String::new();
    reply
        .into_body()
        .into_reader()
        .take(MAX_TOKEN_REPLY)
        .read_to_string(&mut text)
        .map_err(|e| format!("token service {realm}: {e}"))?;
    match status {
        200 => {}
        401 | 403 if credentials.is_some() => {
            return Err(format!(
                "token service {realm} rejected the credentials (wrong user name or password?)"
            ))
        }
        401 | 403 => {
            return Err(format!(
                "token service {realm} requires credentials: log in with `skiff-build login`"
            ))
        }
        _ => return Err(format!("token service {realm} replied {status}")),
    }
    let reply: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("token service {realm}: {e}"))?;
    ["token", "access_token"]
        .iter()
        .find_map(|k| reply.get(*k).and_then(|v| v.as_str()))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| format!("token service {realm}: the reply has no usable token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenge(h),
            Ok(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="x""#), Ok(Challenge::Basic));
        assert!(parse_challenge(r#"Bearer service="x""#).is_err());
        assert!(parse_challenge(r#"Bearer realm="file:///etc/passwd""#).is_err());
        assert!(parse_challenge(r#"Bearer realm="https://x"#).is_err());
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
