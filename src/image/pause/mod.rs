//! crid's own pause image, built without a network: the static pause
//! program (src/pause/main.rs, compiled by build.rs) as `/pause` in one
//! uncompressed layer, a config with `Entrypoint ["/pause"]` and an OCI
//! manifest, all built in memory. Storing it is the caller's (same path as pulls).

use super::local::{self, LocalImage};
use super::manifest;
use super::store::Loaded;

/// The pause program, a static ELF.
pub static PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/crid-pause"));

/// The built image: its one layer, and the rest for `local::store`.
pub struct BuiltImage {
    pub layer: Vec<u8>,
    pub diff_id: String,
    pub image: LocalImage,
}

/// A ustar archive holding one regular file.
pub fn single_file_tar(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |buf: &mut [u8], v: u64| {
        let s = format!("{:0width$o}\0", v, width = buf.len() - 1);
        buf.copy_from_slice(s.as_bytes());
    };
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The built-in image's one layer: the pause program as `/pause`.
pub fn layer() -> Vec<u8> {
    single_file_tar("pause", 0o755, PAUSE_BINARY)
}

/// Diff id of `layer()`, computed once.
pub fn builtin_diff_id() -> &'static str {
    static DIFF_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIFF_ID.get_or_init(|| manifest::sha256_digest(&layer()))
}

/// `image` is crid's built-in pause image, whatever its name and wherever it
/// came from (built here, or pushed to a registry and pulled): its one layer
/// is `layer()`, so its process is crid's pause program.
pub fn is_builtin(image: &Loaded) -> bool {
    matches!(image.diff_ids.as_slice(), [only] if only == builtin_diff_id())
}

pub fn build() -> BuiltImage {
    let layer = layer();
    let diff_id = builtin_diff_id().to_string();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": manifest::ARCH,
        "os": manifest::OS,
        "config": {"Entrypoint": ["/pause"], "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "crid (built-in pause image)"}],
    }))
    .expect("serialise config");
    let layers = vec![local::layer_desc(&diff_id, layer.len() as i64)];
    BuiltImage {
        layer,
        diff_id,
        image: LocalImage { config, layers },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_binary_is_a_static_elf() {
        assert_eq!(&PAUSE_BINARY[..4], b"\x7fELF");
        // No PT_INTERP program header: statically linked.
        let phoff = u64::from_le_bytes(PAUSE_BINARY[0x20..0x28].try_into().unwrap()) as usize;
        let phentsize = u16::from_le_bytes(PAUSE_BINARY[0x36..0x38].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes(PAUSE_BINARY[0x38..0x3a].try_into().unwrap()) as usize;
        for i in 0..phnum {
            let off = phoff + i * phentsize;
            let kind = u32::from_le_bytes(PAUSE_BINARY[off..off + 4].try_into().unwrap());
            assert_ne!(kind, 3, "pause has an ELF interpreter");
        }
    }

    #[test]
    fn built_image_is_consistent() {
        let b = build();
        assert_eq!(b.layer.len() % 512, 0);
        assert_eq!(&b.layer[257..262], b"ustar");
        let (cfg, diff_ids) = manifest::parse_config(&b.image.config).unwrap();
        assert_eq!(diff_ids, vec![b.diff_id.clone()]);
        assert_eq!(
            cfg.config()
                .as_ref()
                .unwrap()
                .entrypoint()
                .as_ref()
                .unwrap(),
            &vec!["/pause".to_string()]
        );
        let (m, _) = b.image.manifest();
        assert_eq!(m.layers[0].digest, b.diff_id);
        assert_eq!(b.diff_id, manifest::sha256_digest(&b.layer));
    }
}
