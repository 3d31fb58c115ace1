//! Task events to containerd: `containerd.services.events.ttrpc.v1.Events/Forward`
//! on TTRPC_ADDRESS. One thread sends them in the order they were queued, so
//! containerd sees TaskCreate, TaskStart, TaskExit, TaskDelete in that order.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, SystemTime};

use containerd_shim_protos::cgroups::metrics::Metrics as MetricsV1;
use containerd_shim_protos::cgroups_v2::metrics::Metrics as MetricsV2;
use containerd_shim_protos::events::task::*;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim::events_ttrpc::EventsClient;
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::ttrpc;
use tracing::warn;

use crate::socket;

struct Event {
    topic: &'static str,
    event: Any,
    at: SystemTime,
}

pub struct Publisher {
    tx: Mutex<Sender<Event>>,
}

impl Publisher {
    /// Starts the sender thread; without an address events are dropped.
    pub fn start(ttrpc_address: Option<String>, namespace: String) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        thread::Builder::new()
            .name("events".into())
            .stack_size(128 * 1024)
            .spawn(move || send_loop(rx, ttrpc_address, namespace))?;
        Ok(Self { tx: Mutex::new(tx) })
    }

    pub fn publish<M: Named>(&self, topic: &'static str, msg: &M) {
        let event = match to_any(msg) {
            Ok(a) => a,
            Err(e) => {
                warn!("cannot encode {topic} event: {e}");
                return;
            }
        };
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let _ = tx.send(Event {
            topic,
            event,
            at: SystemTime::now(),
        });
    }
}

/// The protobuf full name of a message the shim sends in an Any. Spelled out
/// rather than taken from reflection: building descriptors costs memory.
pub trait Named: Message {
    const FULL_NAME: &'static str;
}

macro_rules! named {
    ($($t:ty => $n:literal),* $(,)?) => {
        $(impl Named for $t {
            const FULL_NAME: &'static str = $n;
        })*
    };
}

named! {
    TaskCreate => "containerd.events.TaskCreate",
    TaskStart => "containerd.events.TaskStart",
    TaskExit => "containerd.events.TaskExit",
    TaskDelete => "containerd.events.TaskDelete",
    TaskOOM => "containerd.events.TaskOOM",
    TaskExecAdded => "containerd.events.TaskExecAdded",
    TaskExecStarted => "containerd.events.TaskExecStarted",
    TaskPaused => "containerd.events.TaskPaused",
    TaskResumed => "containerd.events.TaskResumed",
    ProcessDetails => "containerd.runc.v1.ProcessDetails",
    MetricsV1 => "io.containerd.cgroups.v1.Metrics",
    MetricsV2 => "io.containerd.cgroups.v2.Metrics",
}

/// A protobuf Any with the bare type name as URL: containerd 1.6's typeurl
/// looks types up by full name without the googleapis prefix.
pub fn to_any<M: Named>(msg: &M) -> containerd_shim_protos::protobuf::Result<Any> {
    Ok(Any {
        type_url: <M as Named>::FULL_NAME.to_string(),
        value: msg.write_to_bytes()?,
        ..Default::default()
    })
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

fn send_loop(rx: Receiver<Event>, address: Option<String>, namespace: String) {
    let mut client: Option<EventsClient> = None;
    for ev in rx {
        let Some(addr) = address.as_deref() else {
            continue;
        };
        let req = ForwardRequest {
            envelope: Some(Envelope {
                timestamp: Some(timestamp(ev.at)).into(),
                namespace: namespace.clone(),
                topic: ev.topic.to_string(),
                event: Some(ev.event).into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        let mut sent = false;
        for attempt in 0..5 {
            if client.is_none() {
                let path = socket::path_of(addr).display().to_string();
                match ttrpc::Client::connect(&format!("unix://{path}")) {
                    Ok(c) => client = Some(EventsClient::new(c)),
                    Err(e) => warn!("cannot connect to containerd at {path}: {e}"),
                }
            }
            if let Some(c) = &client {
                let ctx = ttrpc::context::with_timeout(Duration::from_secs(5).as_nanos() as i64);
                match c.forward(ctx, &req) {
                    Ok(_) => {
                        sent = true;
                        break;
                    }
                    Err(e) => {
                        warn!("cannot forward {} event: {e}", req.envelope.topic);
                        client = None;
                    }
                }
            }
            thread::sleep(Duration::from_millis(50 << attempt));
        }
        if !sent {
            warn!("dropped {} event", req.envelope.topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::MessageFull;

    fn check<M: Named + MessageFull>() {
        assert_eq!(<M as Named>::FULL_NAME, M::descriptor().full_name());
    }

    #[test]
    fn names_are_the_protobuf_full_names() {
        check::<TaskCreate>();
        check::<TaskStart>();
        check::<TaskExit>();
        check::<TaskDelete>();
        check::<TaskOOM>();
        check::<TaskExecAdded>();
        check::<TaskExecStarted>();
        check::<TaskPaused>();
        check::<TaskResumed>();
        check::<ProcessDetails>();
        check::<MetricsV1>();
        check::<MetricsV2>();
    }

    #[test]
    fn any_uses_the_bare_type_name() -> Result<(), Box<dyn std::error::Error>> {
        let a = to_any(&TaskStart {
            container_id: "c".into(),
            pid: 7,
            ..Default::default()
        })?;
        assert_eq!(a.type_url, "containerd.events.TaskStart");
        assert_eq!(TaskStart::parse_from_bytes(&a.value)?.pid, 7);
        Ok(())
    }
}
