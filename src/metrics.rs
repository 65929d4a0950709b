//! Prometheus metrics: one registry, encoded as text on `GET /metrics`.

use std::sync::Mutex;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Labels of HTTP request metrics; `route` is the matched pattern, never the raw path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Labels of request durations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// Labels of per-agent totals: the agent's name (agents are few; instances are not
/// labelled, so the number of series stays bounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    pub agent: String,
}

/// What the running instances of one agent use together.
#[derive(Debug, Default, Clone, Copy)]
pub struct AgentUsage {
    pub memory_bytes: u64,
    pub cpu_seconds: f64,
    pub pids: u64,
    pub instances: u64,
}

/// The service's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    memory: Family<AgentLabels, Gauge>,
    cpu: Family<AgentLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pids: Family<AgentLabels, Gauge>,
}

impl Metrics {
    /// Registers every metric.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 4.0, 10))
        });
        registry.register("http_request_duration_seconds", "Time to answer HTTP requests", durations.clone());
        registry.register("build", "Build information", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        let memory = Family::<AgentLabels, Gauge>::default();
        registry.register("agent_memory_bytes", "Memory of an agent's running instances together", memory.clone());
        let cpu = Family::<AgentLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register("agent_cpu_seconds", "CPU time used so far by an agent's running instances", cpu.clone());
        let pids = Family::<AgentLabels, Gauge>::default();
        registry.register("agent_processes", "Processes of an agent's running instances", pids.clone());
        Metrics { registry: Mutex::new(registry), requests, durations, memory, cpu, pids }
    }

    /// Replaces the per-agent usage totals (read when scraped).
    pub fn set_agent_usage(&self, totals: &[(String, AgentUsage)]) {
        self.memory.clear();
        self.cpu.clear();
        self.pids.clear();
        for (agent, usage) in totals {
            let labels = AgentLabels { agent: agent.clone() };
            self.memory.get_or_create(&labels).set(i64::try_from(usage.memory_bytes).unwrap_or(i64::MAX));
            self.cpu.get_or_create(&labels).set(usage.cpu_seconds);
            self.pids.get_or_create(&labels).set(i64::try_from(usage.pids).unwrap_or(i64::MAX));
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let route = route.to_owned();
        self.requests.get_or_create(&RequestLabels { method: method.to_owned(), route: route.clone(), status }).inc();
        self.durations.get_or_create(&RouteLabels { route }).observe(seconds);
    }

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
