//! Export requests assembled from records encoded once, when the event arrived.
//!
//! `ExportLogsServiceRequest` and `ExportTraceServiceRequest` have the same shape (field 1: a
//! resource block holding field 1 the resource and field 2 a scope block, which holds field 1
//! the scope and field 2 the repeated records), so one assembler writes both around the
//! records' bytes with prost's encoding primitives. Buffering encoded records keeps the queue
//! compact, makes its byte bound exact, and lets a retry resend the same bytes.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;

/// The resource and scope of every request, encoded once.
#[derive(Debug, Clone)]
pub struct Envelope {
    resource: Bytes,
    scope: Bytes,
}

fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_field(tag: u32, bytes: &[u8], buf: &mut BytesMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.put_slice(bytes);
}

impl Envelope {
    /// An envelope for `resource` attributes and Sightline's scope.
    pub fn new(resource_attributes: &[(String, String)]) -> Self {
        Self {
            resource: crate::map::resource(resource_attributes)
                .encode_to_vec()
                .into(),
            scope: crate::map::scope().encode_to_vec().into(),
        }
    }

    /// One request holding `records` (each an encoded `LogRecord` or `Span`). The records
    /// are not copied: the request is written out once, by the transport.
    pub fn request(&self, records: Vec<Bytes>) -> Encoded {
        let records_len: usize = records.iter().map(|r| field_len(2, r.len())).sum();
        let scope_block = field_len(1, self.scope.len()) + records_len;
        let resource_block = field_len(1, self.resource.len()) + field_len(2, scope_block);
        let len = field_len(1, resource_block);
        let mut head = BytesMut::with_capacity(32 + self.resource.len() + self.scope.len());
        encode_key(1, WireType::LengthDelimited, &mut head);
        encode_varint(resource_block as u64, &mut head);
        put_field(1, &self.resource, &mut head);
        encode_key(2, WireType::LengthDelimited, &mut head);
        encode_varint(scope_block as u64, &mut head);
        put_field(1, &self.scope, &mut head);
        Encoded {
            head: head.freeze(),
            records: records.into(),
            len,
        }
    }
}

/// An export request whose records are already encoded: its envelope and the records' bytes,
/// written out (through tonic's prost codec, or [`Encoded::to_bytes`] for HTTP) without
/// being decoded or copied before. Cloning it is cheap (a retry resends the same bytes).
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    head: Bytes,
    records: Arc<[Bytes]>,
    len: usize,
}

impl Encoded {
    /// Encoded length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the request is empty (never true for an assembled request).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The request as one contiguous buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.len);
        self.encode_raw(&mut buf);
        buf.freeze()
    }
}

impl Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.head);
        for r in self.records.iter() {
            encode_key(2, WireType::LengthDelimited, buf);
            encode_varint(r.len() as u64, buf);
            buf.put_slice(r);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Never decoded: requests only go out.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::trace::v1::Span;

    #[test]
    fn assembled_requests_decode_as_opentelemetry_messages() {
        let env = Envelope::new(&[("service.name".into(), "svc".into())]);
        let logs: Vec<Vec<u8>> = (0..300u64)
            .map(|i| {
                LogRecord {
                    time_unix_nano: i,
                    event_name: format!("e{i}"),
                    ..Default::default()
                }
                .encode_to_vec()
            })
            .collect();
        let req = env.request(logs.into_iter().map(Bytes::from).collect());
        assert_eq!(req.len(), req.to_bytes().len());
        let back = ExportLogsServiceRequest::decode(req.to_bytes()).unwrap();
        let sl = &back.resource_logs[0].scope_logs[0];
        assert_eq!(sl.scope.as_ref().unwrap().name, "sightline");
        assert_eq!(sl.log_records.len(), 300);
        assert_eq!(sl.log_records[299].event_name, "e299");
        let attrs = &back.resource_logs[0].resource.as_ref().unwrap().attributes;
        assert_eq!(attrs[0].key, "service.name");

        let spans = [Span {
            name: "chat m".into(),
            ..Default::default()
        }
        .encode_to_vec()];
        let req = env.request(spans.into_iter().map(Bytes::from).collect());
        let back = ExportTraceServiceRequest::decode(req.to_bytes()).unwrap();
        assert_eq!(
            back.resource_spans[0].scope_spans[0].spans[0].name,
            "chat m"
        );
        let empty = env.request(Vec::new());
        assert_eq!(
            ExportLogsServiceRequest::decode(empty.to_bytes())
                .unwrap()
                .resource_logs
                .len(),
            1
        );
    }
}
