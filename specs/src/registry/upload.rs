//! One blob to a registry: skipped when it is there (HEAD), mounted from another repository
//! of the same registry when we know one that has it, else uploaded: one PUT for a small
//! blob, PATCH chunks and a closing PUT for a large one. A transfer that breaks off starts
//! a fresh upload session.

use crate::descriptor::Descriptor;
use crate::store::Store;

use super::session::{drain, header, status_error, Body, Session};
use super::RegistryError;

/// Fresh upload sessions tried for one blob.
const ATTEMPTS: u32 = 3;

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    AlreadyThere,
    Mounted,
    Uploaded,
}

/// Makes sure the registry has `blob`, mounting it from `mount_from` when given.
pub(crate) fn send_blob(
    session: &Session<'_>,
    store: &Store,
    blob: &Descriptor,
    mount_from: Option<&str>,
) -> Result<Sent, RegistryError> {
    let url = session.url(&format!("blobs/{}", blob.digest));
    let reply = session.send("HEAD", &url, &[], Body::Empty)?;
    match reply.status().as_u16() {
        200 => {
            drain(reply);
            return Ok(Sent::AlreadyThere);
        }
        404 => drain(reply),
        _ => return Err(status_error(&url, reply)),
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match upload(session, store, blob, mount_from) {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::info!(digest = %blob.digest, error = %e, "upload broke off; starting again");
            }
            other => return other,
        }
    }
}

fn upload(
    session: &Session<'_>,
    store: &Store,
    blob: &Descriptor,
    mount_from: Option<&str>,
) -> Result<Sent, RegistryError> {
    let mut url = session.url("blobs/uploads/");
    if let Some(from) = mount_from {
        session.add_pull_scope(from);
        url = format!("{url}?mount={}&from={from}", blob.digest);
    }
    let reply = session.send("POST", &url, &[], Body::Empty)?;
    let status = reply.status().as_u16();
    if status == 201 && mount_from.is_some() {
        drain(reply);
        return Ok(Sent::Mounted);
    }
    if status != 202 {
        return Err(status_error(&url, reply));
    }
    let mut location = location(session, &url, &reply)?;
    drain(reply);

    let file = store.open_blob(blob)?;
    let chunk = session.options().chunk_size.max(1);
    let mut offset = 0;
    let closing_body = if blob.size <= chunk {
        Body::File {
            file: &file,
            offset: 0,
            len: blob.size,
        }
    } else {
        while offset < blob.size {
            let len = chunk.min(blob.size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let reply = session.send(
                "PATCH",
                &location,
                &[
                    ("content-type", "application/octet-stream"),
                    ("content-range", &range),
                ],
                Body::File {
                    file: &file,
                    offset,
                    len,
                },
            )?;
            if reply.status().as_u16() != 202 {
                return Err(status_error(&location, reply));
            }
            location = self::location(session, &location, &reply)?;
            drain(reply);
            offset += len;
        }
        Body::Empty
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{sep}digest={}", blob.digest);
    let reply = session.send(
        "PUT",
        &put,
        &[("content-type", "application/octet-stream")],
        closing_body,
    )?;
    if reply.status().as_u16() != 201 {
        return Err(status_error(&put, reply));
    }
    drain(reply);
    Ok(Sent::Uploaded)
}

/// The upload URL a reply's Location names.
fn location(
    session: &Session<'_>,
    url: &str,
    reply: &super::session::Reply,
) -> Result<String, RegistryError> {
    header(reply, "location")
        .map(|l| session.absolute(l))
        .ok_or_else(|| RegistryError::BadReply {
            url: url.to_owned(),
            reason: "upload reply without a Location".to_owned(),
        })
}
