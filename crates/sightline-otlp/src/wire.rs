//! Export requests assembled from records encoded once, when the event arrived.
//!
//! `ExportLogsServiceRequest` and `ExportTraceServiceRequest` have the same shape (field 1: a
//! resource block holding field 1 the resource and field 2 a scope block, which holds field 1
//! the scope and field 2 the repeated records), so one assembler writes both around the
//! records' bytes with prost's encoding primitives. Buffering encoded records keeps the queue
//! compact, makes its byte bound exact, and lets a retry resend the same bytes.

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

    /// One request holding `records` (each an encoded `LogRecord` or `Span`).
    pub fn request<'a>(&self, records: impl Iterator<Item = &'a [u8]> + Clone) -> Bytes {
        let records_len: usize = records.clone().map(|r| field_len(2, r.len())).sum();
        let scope_block = field_len(1, self.scope.len()) + records_len;
        let resource_block = field_len(1, self.resource.len()) + field_len(2, scope_block);
        let mut buf = BytesMut::with_capacity(field_len(1, resource_block));
        encode_key(1, WireType::LengthDelimited, &mut buf);
        encode_varint(resource_block as u64, &mut buf);
        put_field(1, &self.resource, &mut buf);
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(scope_block as u64, &mut buf);
        put_field(1, &self.scope, &mut buf);
        for r in records {
            put_field(2, r, &mut buf);
        }
        buf.freeze()
    }
}

/// An already-encoded request body, sent through tonic's prost codec as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded(pub Bytes);

impl Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
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
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
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
        let req = env.request(logs.iter().map(Vec::as_slice));
        let back = ExportLogsServiceRequest::decode(req).unwrap();
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
        let req = env.request(spans.iter().map(Vec::as_slice));
        let back = ExportTraceServiceRequest::decode(req).unwrap();
        assert_eq!(
            back.resource_spans[0].scope_spans[0].spans[0].name,
            "chat m"
        );
        let empty = env.request(std::iter::empty());
        assert_eq!(
            ExportLogsServiceRequest::decode(empty)
                .unwrap()
                .resource_logs
                .len(),
            1
        );
    }
}
