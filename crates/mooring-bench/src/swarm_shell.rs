fn main() {
    let swarm = mooring_testkit::swarm::Swarm::start(2);
    for n in &swarm.nodes {
        println!("unix://{}", n.socket.display());
    }
    std::fs::write("/tmp/shell/ready", "").unwrap();
    while std::path::Path::new("/tmp/shell/ready").exists() {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
