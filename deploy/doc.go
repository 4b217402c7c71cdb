// Package deploy holds what operators load rather than run: the Prometheus
// configuration and alert rules (prometheus/), the Grafana datasource and
// dashboard (grafana/) and the station tokens example. It has no code; its
// tests check those files (promtool, the runbook links, the dashboard's
// shape).
package deploy
