#!/usr/bin/env python3
"""Writes Sightline's Grafana dashboards (classic JSON model, Grafana 10+) from one
description, so every panel gets a title, a description, a unit, the shared variables and
$__rate_interval. Run `python3 dashboards/build.py` after editing; a test checks the
committed JSON is what this prints and evaluates every query against a real Prometheus."""
import json
import os

SEL = 'job=~"$job",instance=~"$instance"'
SELC = SEL + ',agent_class=~"$agent_class"'
RI = "[$__rate_interval]"


def rate(metric, sel=SELC):
    return f"rate({metric}{{{sel}}}{RI})"


def p(q, metric, by, sel=SELC):
    return f"histogram_quantile({q}, sum by (le, {by}) ({rate(metric + '_bucket', sel)}))"


DASHBOARDS = {
    "sightline-agents-overview": ("Sightline · Agents overview", [
        ("Events per second by family", "Every event the Prometheus sink saw, per event family.", "ops",
         [(f"sum by (family) ({rate('sightline_events_total')})", "{{family}}")]),
        ("Agents active and hibernated", "Agents in memory versus hibernated (state kept, memory released), per class.", "short",
         [(f'sum by (agent_class) (sightline_agents_active{{{SELC}}})', "active {{agent_class}}"),
          (f'sum by (agent_class) (sightline_agents_hibernated{{{SELC}}})', "hibernated {{agent_class}}")]),
        ("RPC calls per second by outcome", "RPC calls handled, per outcome.", "reqps",
         [(f"sum by (outcome) ({rate('sightline_rpc_calls_total')})", "{{outcome}}")]),
        ("RPC error ratio", "Share of RPC calls that did not end ok, per agent class.", "percentunit",
         [(f'sum by (agent_class) ({rate("sightline_rpc_calls_total", SELC + ",outcome!=" + chr(34) + "ok" + chr(34))}) / sum by (agent_class) ({rate("sightline_rpc_calls_total")})', "{{agent_class}}")]),
        ("RPC latency p50 / p99", "RPC call latency quantiles across methods.", "s",
         [(p(0.5, "sightline_rpc_duration_seconds", "agent_class"), "p50 {{agent_class}}"),
          (p(0.99, "sightline_rpc_duration_seconds", "agent_class"), "p99 {{agent_class}}")]),
        ("State updates and rejections per second", "State updates persisted and rejected (invalid or over the size limit).", "ops",
         [(f"sum by (agent_class) ({rate('sightline_state_updates_total')})", "updates {{agent_class}}"),
          (f"sum by (agent_class) ({rate('sightline_state_rejected_total')})", "rejected {{agent_class}}")]),
        ("State size p95", "95th percentile of agent state size after an update.", "bytes",
         [(p(0.95, "sightline_state_size_bytes", "agent_class"), "{{agent_class}}")]),
        ("Open connections", "Client connections (WebSockets) open, per class.", "short",
         [(f'sum by (agent_class) (sightline_connections_open{{{SELC}}})', "{{agent_class}}")]),
        ("Approvals by outcome", "Human approvals requested, granted, denied and expired per second.", "ops",
         [(f"sum by (outcome) ({rate('sightline_approvals_total')})", "{{outcome}}")]),
    ]),
    "sightline-schedules-and-fibers": ("Sightline · Schedules and fibers", [
        ("Schedule runs per second by outcome", "Scheduled callback runs that ended: ok, or error after exhausting retries.", "ops",
         [(f"sum by (outcome) ({rate('sightline_schedule_executions_total')})", "{{outcome}}")]),
        ("Retries per second by callback", "Retries after a failed attempt, per callback.", "ops",
         [(f"sum by (callback) ({rate('sightline_schedule_retries_total')})", "{{callback}}")]),
        ("Retries exhausted by callback", "Callbacks that failed every attempt (schedule:error) in the interval.", "short",
         [(f"sum by (callback) (increase(sightline_schedule_retries_exhausted_total{{{SELC}}}{RI}))", "{{callback}}")]),
        ("Schedule lateness p95", "How late scheduled callbacks started (95th percentile).", "s",
         [(p(0.95, "sightline_schedule_lateness_seconds", "agent_class"), "{{agent_class}}")]),
        ("Missed cron runs", "Cron runs that were due while agents were down, per callback.", "short",
         [(f"sum by (callback) (increase(sightline_schedule_missed_runs_total{{{SELC}}}{RI}))", "{{callback}}")]),
        ("Schedule duration p95 by callback", "Run time of scheduled callbacks, retries included.", "s",
         [(p(0.95, "sightline_schedule_duration_seconds", "callback"), "{{callback}}")]),
        ("Fiber runs per second by outcome", "Fiber runs that completed, failed or were interrupted.", "ops",
         [(f"sum by (outcome) ({rate('sightline_fiber_runs_total')})", "{{outcome}}")]),
        ("Fiber recoveries per second by outcome", "Recoveries of interrupted fibers: handled, failed or skipped.", "ops",
         [(f"sum by (outcome) ({rate('sightline_fiber_recoveries_total')})", "{{outcome}}")]),
        ("Queue jobs and workflows by outcome", "Queued jobs and workflows that ended, per outcome.", "ops",
         [(f"sum by (outcome) ({rate('sightline_queue_jobs_total')})", "queue {{outcome}}"),
          (f"sum by (outcome) ({rate('sightline_workflows_total')})", "workflow {{outcome}}")]),
    ]),
    "sightline-mcp-and-tools": ("Sightline · MCP and tools", [
        ("MCP connection attempts by state", "Connection attempts per MCP server, by the state reached.", "ops",
         [(f"sum by (server, state) ({rate('sightline_mcp_connections_total')})", "{{server}} {{state}}")]),
        ("MCP connect failure ratio", "Share of connection attempts that failed, per server.", "percentunit",
         [(f"sum by (server) ({rate('sightline_mcp_connect_failures_total')}) / sum by (server) ({rate('sightline_mcp_connections_total')})", "{{server}}")]),
        ("MCP tools discovered", "Tools the last discovery found, per server.", "short",
         [(f'max by (server) (sightline_mcp_tools_discovered{{{SELC}}})', "{{server}}")]),
        ("Tool calls per second by outcome", "Tool calls, per tool and outcome.", "ops",
         [(f"sum by (tool, outcome) ({rate('sightline_tool_calls_total')})", "{{tool}} {{outcome}}")]),
        ("Tool call latency p95", "95th percentile tool call latency, per tool.", "s",
         [(p(0.95, "sightline_tool_call_duration_seconds", "tool"), "{{tool}}")]),
        ("Model calls per second", "Model calls, per model and outcome.", "ops",
         [(f"sum by (model, outcome) ({rate('sightline_model_calls_total')})", "{{model}} {{outcome}}")]),
        ("Model tokens per second", "Input and output tokens, per model.", "short",
         [(f"sum by (model, direction) ({rate('sightline_model_tokens_total')})", "{{model}} {{direction}}")]),
        ("Model call latency p95", "95th percentile model call latency, per model.", "s",
         [(p(0.95, "sightline_model_call_duration_seconds", "model"), "{{model}}")]),
    ]),
    "sightline-pipeline-health": ("Sightline · Pipeline health", [
        ("Events delivered per second by sink", "Events each sink accepted.", "ops",
         [(f"sum by (sink) ({rate('sightline_sink_events_delivered_total', SEL)})", "{{sink}}")]),
        ("Events dropped per second", "Events a sink's queue (or its redaction stage's) refused, by reason. Should be 0.", "ops",
         [(f"sum by (sink, reason) ({rate('sightline_sink_events_dropped_total', SEL)})", "{{sink}} {{reason}}")]),
        ("Events failed per second", "Events handed to a sink but not delivered, by reason. Should be 0.", "ops",
         [(f"sum by (sink, reason) ({rate('sightline_sink_events_failed_total', SEL)})", "{{sink}} {{reason}}")]),
        ("Queue fill", "Events waiting in each sink's queue, as a share of its capacity.", "percentunit",
         [(f'max by (sink) (sightline_sink_queue_depth{{{SEL}}} / sightline_sink_queue_capacity{{{SEL}}})', "{{sink}}")]),
        ("Export errors and retries per second", "Sink writes that failed, and batch retries.", "ops",
         [(f"sum by (sink) ({rate('sightline_sink_export_errors_total', SEL)})", "errors {{sink}}"),
          (f"sum by (sink) ({rate('sightline_sink_retries_total', SEL)})", "retries {{sink}}")]),
        ("Export time share", "Seconds spent writing per second: how busy each sink's worker is.", "percentunit",
         [(f"sum by (sink) ({rate('sightline_sink_export_seconds_total', SEL)})", "{{sink}}")]),
        ("Sinks up", "1 while a sink's worker runs; 0 when it stopped or died.", "short",
         [(f'min by (sink) (sightline_sink_up{{{SEL}}})', "{{sink}}")]),
        ("Redactions per second", "Redactions by policy, rule (or detector) and action.", "ops",
         [(f"sum by (policy, rule, action) ({rate('sightline_redactions_total', SEL)})", "{{policy}} {{rule}} {{action}}")]),
        ("Metric series folded into __overflow__", "Updates the cardinality guard folded, per metric. Non-zero: some label has too many values.", "ops",
         [(f"sum by (metric) ({rate('sightline_metric_series_overflow_total', SEL)})", "{{metric}}")]),
        ("OTLP events per second by outcome", "Events the OTLP exporter delivered, and lost by reason (rejected, gave_up, shutdown, queue_full). Losses should be 0.", "ops",
         [(f"sum by (outcome) ({rate('sightline_otlp_events_total', SEL)})", "{{outcome}}")]),
        ("OTLP requests per second and buffer", "Export requests by result, and events the exporter holds (waiting or being retried): a growing buffer means the collector is slow or down.", "short",
         [(f"sum by (result) ({rate('sightline_otlp_requests_total', SEL)})", "requests {{result}}"),
          (f'sum(sightline_otlp_held_events{{{SEL}}})', "held events")]),
    ]),
}


def variable(name, label, query):
    return {
        "name": name, "label": label, "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": name},
        "definition": query, "refresh": 2, "includeAll": True, "multi": True,
        "allValue": ".*", "current": {"selected": True, "text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard(uid, title, panels):
    out_panels = []
    for i, (ptitle, desc, unit, targets) in enumerate(panels):
        out_panels.append({
            "id": i + 1, "type": "timeseries", "title": ptitle, "description": desc,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [
                {"refId": chr(65 + j), "expr": expr, "legendFormat": legend,
                 "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                for j, (expr, legend) in enumerate(targets)
            ],
        })
    return {
        "uid": uid, "title": title, "tags": ["sightline"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1},
            variable("job", "Job", "label_values(sightline_events_total, job)"),
            variable("instance", "Instance", 'label_values(sightline_events_total{job=~"$job"}, instance)'),
            variable("agent_class", "Agent class", 'label_values(sightline_events_total{job=~"$job",instance=~"$instance"}, agent_class)'),
        ]},
        "panels": out_panels,
    }


def main():
    import sys
    here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for uid, (title, panels) in DASHBOARDS.items():
        with open(os.path.join(here, uid + ".json"), "w") as f:
            json.dump(dashboard(uid, title, panels), f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
