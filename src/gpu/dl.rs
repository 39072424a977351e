//! `dlopen`, `dlsym` and `dladdr` through `libc`: how the core reaches the CUDA
//! driver and the plugin without linking either (one `libmapcache.so` for every
//! machine). Libraries opened here are never closed: a plugin's code and the
//! driver stay mapped for the life of the process, as a driver must.

use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// An open library (never closed).
pub(crate) struct Library(*mut c_void);

// SAFETY: a dlopen handle may be used from any thread.
unsafe impl Send for Library {}
// SAFETY: as above; dlsym is thread-safe.
unsafe impl Sync for Library {}

/// The loader's message for the last failure on this thread.
fn last_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the
    // next dl call on this thread; it is copied at once.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        return "unknown dlopen error".into();
    }
    // SAFETY: non-null, NUL-terminated (above).
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

impl Library {
    /// Opens `name` (a file name the loader searches for, or a path) with
    /// `RTLD_NOW | RTLD_GLOBAL`: every symbol resolved now, and the driver's
    /// visible to the plugin opened after it. The error is the loader's message.
    pub(crate) fn open(name: &str) -> Result<Library, String> {
        let c_name = CString::new(name).map_err(|_| format!("{name:?} holds a NUL byte"))?;
        Library::dlopen(&c_name)
    }

    /// Opens the file at `path`, byte for byte as named (no lossy conversion)
    /// and never through the loader's search path: a path without a slash is
    /// given one (`./name`), since dlopen searches for a bare name.
    pub(crate) fn open_path(path: &Path) -> Result<Library, String> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        let mut name = if bytes.contains(&b'/') {
            Vec::new()
        } else {
            b"./".to_vec()
        };
        name.extend_from_slice(bytes);
        let c_name =
            CString::new(name).map_err(|_| format!("{} holds a NUL byte", path.display()))?;
        Library::dlopen(&c_name)
    }

    fn dlopen(name: &CStr) -> Result<Library, String> {
        // SAFETY: a NUL-terminated name; dlopen runs the library's initialisers,
        // which for the CUDA driver and the plugin are theirs to keep sound.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if handle.is_null() {
            return Err(last_error());
        }
        Ok(Library(handle))
    }

    /// The address of `symbol` (NUL-terminated), or the loader's message.
    pub(crate) fn symbol(&self, symbol: &[u8]) -> Result<*mut c_void, String> {
        let name = CStr::from_bytes_with_nul(symbol).map_err(|e| e.to_string())?;
        // SAFETY: a live handle and a NUL-terminated name.
        let address = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        if address.is_null() {
            return Err(last_error());
        }
        Ok(address)
    }
}

/// The directory of the shared object this code is in (`libmapcache.so`, or the
/// executable when the core is linked statically), found with `dladdr`.
pub(crate) fn own_directory() -> Option<PathBuf> {
    // SAFETY: an all-zero Dl_info is a valid value to be overwritten.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let address = own_directory as *const c_void;
    // SAFETY: `address` is code of this object; `info` is writable.
    if unsafe { libc::dladdr(address, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr succeeded: dli_fname is a NUL-terminated path.
    let file = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy();
    let file = Path::new(file.as_ref());
    let file = if file.is_absolute() {
        file.to_path_buf()
    } else {
        // A relative name is how the object was found, relative to a working
        // directory that may have changed since, or a bare name: the main
        // program's argv[0] in a program linked with libmapcache.a (run from
        // PATH, "prog"; from its directory, "./prog"). The kernel knows the
        // file each mapping came from.
        let maps = std::fs::read_to_string("/proc/self/maps").ok();
        match maps.and_then(|maps| mapped_file(&maps, address as usize)) {
            Some(file) => file,
            None if file.components().count() == 1 => std::env::current_exe().ok()?,
            None => std::env::current_dir().ok()?.join(file),
        }
    };
    file.parent().map(Path::to_path_buf)
}

/// The absolute path of the file mapped at `address`, from the text of
/// `/proc/self/maps` (`start-end perms offset dev inode path`, hexadecimal
/// addresses).
fn mapped_file(maps: &str, address: usize) -> Option<PathBuf> {
    maps.lines().find_map(|line| {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        if !(start..end).contains(&address) {
            return None;
        }
        let path = fields.nth(4)?.trim_start();
        path.starts_with('/').then(|| PathBuf::from(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named_in_the_error() {
        let error = Library::open("libmapcache-no-such-library.so.9")
            .err()
            .unwrap();
        assert!(
            error.contains("libmapcache-no-such-library.so.9"),
            "{error}"
        );
    }

    #[test]
    fn libc_opens_and_resolves() {
        let libc = Library::open("libc.so.6").unwrap();
        assert!(libc.symbol(b"malloc\0").is_ok());
        assert!(libc.symbol(b"mapcache_no_such_symbol\0").is_err());
    }

    #[test]
    fn a_path_is_opened_as_named_never_searched_for() {
        // On the loader's search path, not in the working directory.
        assert!(Library::open("libc.so.6").is_ok());
        assert!(!Path::new("libc.so.6").exists());
        let error = Library::open_path(Path::new("libc.so.6")).err().unwrap();
        assert!(error.contains("./libc.so.6"), "{error}");
        // A path with a slash as it is.
        let libc = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.split_whitespace()
                    .nth(5)
                    .filter(|p| p.contains("libc.so"))
                    .map(String::from)
            })
            .unwrap();
        assert!(Library::open_path(Path::new(&libc)).is_ok(), "{libc}");
    }

    #[test]
    fn the_mapping_of_an_address_names_its_file() {
        let maps = "\
55d0c0a00000-55d0c0a20000 r--p 00000000 08:01 1234                       /opt/app/bin/prog
55d0c0a20000-55d0c0b00000 r-xp 00020000 08:01 1234                       /opt/app/bin/prog
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
7f1000000000-7f1000100000 r-xp 00000000 08:01 99                         /opt/my dir/libmapcache.so.3
";
        assert_eq!(
            mapped_file(maps, 0x55d0c0a20010),
            Some(PathBuf::from("/opt/app/bin/prog"))
        );
        // A path with a space in it, whole.
        assert_eq!(
            mapped_file(maps, 0x7f1000000100),
            Some(PathBuf::from("/opt/my dir/libmapcache.so.3"))
        );
        // Anonymous and special mappings, and an address mapped by nothing.
        assert_eq!(mapped_file(maps, 0x7f0000000010), None);
        assert_eq!(mapped_file(maps, 0x7ffd00000010), None);
        assert_eq!(mapped_file(maps, 0x10), None);
        // This very code.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = mapped_file(&maps, own_directory as *const c_void as usize).unwrap();
        assert!(exe.is_absolute() && exe.is_file(), "{}", exe.display());
    }

    #[test]
    fn own_directory_is_where_this_code_is() {
        let dir = own_directory().unwrap();
        assert!(dir.is_dir(), "{}", dir.display());
    }
}
