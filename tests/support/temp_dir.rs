//! A directory of a test's own under the system's temporary directory, made
//! empty and removed on drop; its name has the test process's id, so parallel
//! runs never share one (each test file includes this with `#[path]`).

use std::ffi::OsString;
use std::path::PathBuf;

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `mapcache-<prefix>-<pid>-<name>`, empty.
    pub fn new(prefix: &str, name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("mapcache-{prefix}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `file` in the directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// The names in the directory, sorted (a save must leave no temporary
    /// file behind).
    #[allow(dead_code)]
    pub fn names(&self) -> Vec<OsString> {
        let mut names: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
