//! A real Docker Swarm for tests: engines ([`RemoteEngine`]s) in network namespaces of
//! their own, joined by a switch — a Linux bridge in a namespace of its own, so the
//! machine's firewall never sees their traffic — on `10.232.S.0/24` (`S` from the
//! process id): this machine `.1`, node `n` at `.10+n`. Node 0 is the manager
//! (`docker swarm init`), the others join it as workers; overlay networks span them.
//! Each node is still reached by Mooring over TCP with TLS at its address. Torn down
//! on drop: the nodes, then the switch.

use crate::engine::{engine_id, run, RemoteEngine};
use std::process::Command;
use std::time::{Duration, Instant};

/// A bridge in a namespace of its own, with a port for this machine.
struct Switch {
    netns: String,
    subnet: String,
}

impl Switch {
    fn start() -> Switch {
        let s = std::process::id() % 250;
        let netns = format!("mooring-sw{s}");
        let subnet = format!("10.232.{s}");
        run("ip", &["netns", "add", &netns]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", netns.as_str()];
            all.extend_from_slice(args);
            run("ip", &all);
        };
        inside(&["ip", "link", "add", "br0", "type", "bridge"]);
        inside(&["ip", "link", "set", "br0", "up"]);
        // This machine's port: the tests (and the daemon) reach every node through it.
        let (host_end, sw_end) = (format!("msh{s}"), format!("mss{s}"));
        run(
            "ip",
            &[
                "link", "add", &host_end, "type", "veth", "peer", "name", &sw_end,
            ],
        );
        run("ip", &["link", "set", &sw_end, "netns", &netns]);
        inside(&["ip", "link", "set", &sw_end, "master", "br0"]);
        inside(&["ip", "link", "set", &sw_end, "up"]);
        run(
            "ip",
            &["addr", "add", &format!("{subnet}.1/24"), "dev", &host_end],
        );
        run("ip", &["link", "set", &host_end, "up"]);
        Switch { netns, subnet }
    }

    /// A namespace for node `n`, plugged into the switch; its name and address.
    fn plug(&self, n: u32) -> (String, String) {
        let id = engine_id(n);
        let netns = format!("mooring-e{id}");
        let ip = format!("{}.{}", self.subnet, 10 + n);
        let (node_end, sw_end) = (format!("mn{id}"), format!("ms{id}"));
        run("ip", &["netns", "add", &netns]);
        run(
            "ip",
            &[
                "link", "add", &node_end, "type", "veth", "peer", "name", &sw_end,
            ],
        );
        run("ip", &["link", "set", &node_end, "netns", &netns]);
        run("ip", &["link", "set", &sw_end, "netns", &self.netns]);
        let at = |ns: &str, args: &[&str]| {
            let mut all = vec!["netns", "exec", ns];
            all.extend_from_slice(args);
            run("ip", &all);
        };
        at(
            &self.netns,
            &["ip", "link", "set", &sw_end, "master", "br0"],
        );
        at(&self.netns, &["ip", "link", "set", &sw_end, "up"]);
        at(
            &netns,
            &["ip", "addr", "add", &format!("{ip}/24"), "dev", &node_end],
        );
        at(&netns, &["ip", "link", "set", &node_end, "up"]);
        at(&netns, &["ip", "link", "set", "lo", "up"]);
        (netns, ip)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        // Its veths (this machine's port included) go with it.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .status();
    }
}

/// A Swarm of one manager (`nodes[0]`) and workers.
pub struct Swarm {
    /// The nodes, the manager first. Dropped before the switch.
    pub nodes: Vec<RemoteEngine>,
    _switch: Switch,
}

impl Swarm {
    /// A manager and `workers` workers (at most 3 nodes in all), every node Ready.
    pub fn start(workers: u32) -> Swarm {
        assert!(workers < 3);
        let switch = Switch::start();
        let nodes: Vec<RemoteEngine> = (0..=workers)
            .map(|n| {
                let (netns, ip) = switch.plug(n);
                RemoteEngine::start_in(netns, ip)
            })
            .collect();
        let manager = &nodes[0];
        // Overlay subnets away from the machine's and the switch's addresses.
        manager.docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            &manager.ip,
            "--listen-addr",
            &format!("{}:2377", manager.ip),
            "--default-addr-pool",
            "10.241.0.0/16",
        ]);
        let token = manager.docker(&["swarm", "join-token", "-q", "worker"]);
        for w in &nodes[1..] {
            w.docker(&[
                "swarm",
                "join",
                "--token",
                token.trim(),
                "--advertise-addr",
                &w.ip,
                &format!("{}:2377", manager.ip),
            ]);
        }
        let swarm = Swarm {
            nodes,
            _switch: switch,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while swarm.ready_nodes() < workers as usize + 1 {
            assert!(
                Instant::now() < deadline,
                "the swarm's nodes did not become ready: {}",
                swarm.manager().docker(&["node", "ls"])
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        swarm
    }

    /// This machine's address on the switch: what the nodes reach it at.
    pub fn host_ip(&self) -> String {
        format!("{}.1", self._switch.subnet)
    }

    /// The manager node.
    pub fn manager(&self) -> &RemoteEngine {
        &self.nodes[0]
    }

    /// How many nodes the manager sees Ready.
    pub fn ready_nodes(&self) -> usize {
        self.manager()
            .docker(&["node", "ls", "--format", "{{.Status}}"])
            .lines()
            .filter(|l| l.trim() == "Ready")
            .count()
    }
}
