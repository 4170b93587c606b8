#!/usr/bin/env python3
"""An OTLP/gRPC receiver written with Python's `opentelemetry-proto` package (and grpcio):
the independent decoder of the Rotel end-to-end test. It prints `listening <port>` once ready,
then one JSON line per record it decodes, normalized so that a test can compare it with what
Sightline sent:

    {"signal": "logs"|"traces", "resource": {...}, "record": {...}}

Attribute values become plain JSON (int64 as int, arrays and kvlists as lists and dicts), ids
become lowercase hex. Usage: otlp_decoder.py [PORT] (0 or nothing: any free port).
"""

import json
import sys
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attrs(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def emit(signal, resource, record):
    line = json.dumps({"signal": signal, "resource": resource, "record": record}, sort_keys=True)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def Export(self, request, context):
        for rl in request.resource_logs:
            resource = attrs(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    emit("logs", resource, {
                        "event_name": r.event_name,
                        "time_unix_nano": r.time_unix_nano,
                        "severity_number": r.severity_number,
                        "severity_text": r.severity_text,
                        "trace_id": r.trace_id.hex(),
                        "span_id": r.span_id.hex(),
                        "body": value(r.body) if r.HasField("body") else None,
                        "attributes": attrs(r.attributes),
                    })
        return logs_service_pb2.ExportLogsServiceResponse()


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        for rs in request.resource_spans:
            resource = attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    emit("traces", resource, {
                        "name": s.name,
                        "kind": s.kind,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "start_time_unix_nano": s.start_time_unix_nano,
                        "end_time_unix_nano": s.end_time_unix_nano,
                        "status_code": s.status.code,
                        "status_message": s.status.message,
                        "attributes": attrs(s.attributes),
                    })
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    sys.stdout.write(f"listening {bound}\n")
    sys.stdout.flush()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
