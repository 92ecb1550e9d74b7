//! A test certificate authority made with `openssl`: a CA, a server
//! certificate for 127.0.0.1 and a client certificate, all signed by it
//! (ECDSA P-256, valid for two days), in Docker's `certs.d` file names.

use std::path::PathBuf;
use std::process::Command;

/// Run `openssl` with `args`; its standard output.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub struct TestPki {
    pub dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> TestPki {
        let dir = super::short_tempdir("pki");
        let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        let (ca_key, ca_crt) = (p("ca.key"), p("ca.crt"));
        ca.extend([
            "-subj",
            "/CN=crid test CA",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &ca_key,
            "-out",
            &ca_crt,
        ]);
        openssl(&ca);
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            let (key, csr, cert, extfile) = (
                p(&format!("{name}.key")),
                p(&format!("{name}.csr")),
                p(&format!("{name}.cert")),
                p(&format!("{name}.ext")),
            );
            std::fs::write(&extfile, ext).unwrap();
            let mut req = vec!["req"];
            req.extend(ec);
            let subj = format!("/CN=crid test {name}");
            req.extend(["-subj", &subj, "-keyout", &key, "-out", &csr]);
            openssl(&req);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &cert,
            ]);
        }
        TestPki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `certs.d`-style directory for clients (skopeo's `--cert-dir`): the
    /// CA as `ca.crt`, the client's `client.cert` and `client.key`.
    pub fn client_dir(&self) -> PathBuf {
        let d = self.path("client-dir");
        self.copy_client_files(&d);
        d
    }

    /// Copy `ca.crt`, `client.cert` and `client.key` into `dir` (made if
    /// missing).
    pub fn copy_client_files(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        for f in ["ca.crt", "client.cert", "client.key"] {
            std::fs::copy(self.path(f), dir.join(f)).unwrap();
        }
    }
}
