//! queue-worker: records and expires codes from the queue. Not built yet: see issue 5.

fn main() {
    eprintln!("queue-worker is not implemented yet (issue 5)");
    std::process::exit(2);
}
