// `sqlx::migrate!` embeds the migration files at compile time, but cargo
// does not know they are inputs: without this, a new migration is missing
// from an incremental build until some Rust file of this crate changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
