//! Embeds `templates/` in the binary, so the service runs with the
//! templates it was built and tested with, wherever it is deployed
//! (`templates.dir` can still point at a folder to load instead).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("templates");
    println!("cargo::rerun-if-changed={}", root.display());
    // `sqlx::migrate!` embeds migrations/ without telling Cargo (see
    // services/auth/build.rs).
    println!("cargo::rerun-if-changed=migrations");
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    let mut code = String::from(
        "/// `(path below templates/, content)` of every template file.\npub const EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let relative = file
            .strip_prefix(&root)?
            .to_str()
            .ok_or("template path is not UTF-8")?;
        writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            file.display().to_string()
        )?;
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("embedded_templates.rs");
    std::fs::write(out, code)?;
    Ok(())
}
