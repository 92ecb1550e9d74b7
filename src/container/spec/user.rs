//! The container user: CRI run_as_* or the image USER, resolved through the
//! image's /etc/passwd and /etc/group contents (given as text).

use crate::error::{Error, Result};

/// uid, gid and additional gids of the container process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// What the caller asks for: CRI fields, falling back to the image's USER.
pub struct UserRequest<'a> {
    pub run_as_user: Option<i64>,
    pub run_as_username: &'a str,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: &'a [i64],
    pub image_user: &'a str,
    /// `SupplementalGroupsPolicy::Strict`: the image's /etc/group adds no
    /// groups; only the primary group and `supplemental_groups` count.
    pub strict_groups: bool,
}

fn passwd_by_name<'a>(passwd: &'a str, name: &str) -> Option<(u32, u32, &'a str)> {
    passwd_entries(passwd).find(|e| e.2 == name)
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = (u32, u32, &str)> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?, f[0]))
    })
}

/// (name, gid, members) of each group line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

fn parse_id(s: &str, what: &str) -> Result<u32> {
    s.parse()
        .map_err(|_| Error::invalid(format!("{what}: invalid id {s:?}")))
}

pub fn resolve_user(
    req: &UserRequest,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser> {
    let passwd = passwd.unwrap_or("");
    let group = group.unwrap_or("");
    // (user part, group part) as in "user[:group]".
    let (user_part, group_part): (String, Option<String>) = if let Some(uid) = req.run_as_user {
        (uid.to_string(), None)
    } else if !req.run_as_username.is_empty() {
        (req.run_as_username.to_string(), None)
    } else {
        match req.image_user.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (req.image_user.to_string(), None),
        }
    };
    let (uid, mut gid, name) = if user_part.is_empty() {
        (
            0,
            0,
            passwd_entries(passwd)
                .find(|e| e.0 == 0)
                .map(|e| e.2.to_string()),
        )
    } else if let Ok(uid) = user_part.parse::<u32>() {
        match passwd_entries(passwd).find(|e| e.0 == uid) {
            Some((_, g, n)) => (uid, g, Some(n.to_string())),
            None => (uid, 0, None),
        }
    } else {
        let (u, g, _) = passwd_by_name(passwd, &user_part).ok_or_else(|| {
            Error::invalid(format!(
                "user: no user {user_part:?} in the image's /etc/passwd"
            ))
        })?;
        (u, g, Some(user_part.clone()))
    };
    if let Some(g) = req.run_as_group {
        gid = u32::try_from(g).map_err(|_| Error::invalid("run_as_group: out of range"))?;
    } else if let Some(gp) = group_part.filter(|g| !g.is_empty()) {
        gid = match gp.parse::<u32>() {
            Ok(g) => g,
            Err(_) => group_entries(group)
                .find(|e| e.0 == gp)
                .map(|e| e.1)
                .ok_or_else(|| {
                    Error::invalid(format!("user: no group {gp:?} in the image's /etc/group"))
                })?,
        };
    }
    let mut additional = vec![gid];
    if let Some(name) = name.as_ref().filter(|_| !req.strict_groups) {
        for (_, g, members) in group_entries(group) {
            if members.contains(&name.as_str()) && !additional.contains(&g) {
                additional.push(g);
            }
        }
    }
    for &g in req.supplemental_groups {
        let g = parse_id(&g.to_string(), "supplemental_groups")?;
        if !additional.contains(&g) {
            additional.push(g);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:34:\nwheel:x:10:www,bob\naudio:x:29:root\n";

    fn req(image_user: &str) -> UserRequest<'_> {
        UserRequest {
            run_as_user: None,
            run_as_username: "",
            run_as_group: None,
            supplemental_groups: &[],
            image_user,
            strict_groups: false,
        }
    }

    fn r(q: &UserRequest) -> Result<ResolvedUser> {
        resolve_user(q, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn image_user_forms_resolve() {
        assert_eq!(
            r(&req("")).unwrap(),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![0, 29]
            }
        );
        assert_eq!(
            r(&req("www")).unwrap(),
            ResolvedUser {
                uid: 33,
                gid: 34,
                additional_gids: vec![34, 10]
            }
        );
        assert_eq!(r(&req("33")).unwrap().gid, 34);
        assert_eq!(
            r(&req("1234")).unwrap(),
            ResolvedUser {
                uid: 1234,
                gid: 0,
                additional_gids: vec![0]
            }
        );
        assert_eq!(r(&req("1234:55")).unwrap().gid, 55);
        assert_eq!(r(&req("www:wheel")).unwrap().gid, 10);
        assert!(matches!(r(&req("nobody")), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            r(&req("www:nogroup")),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn cri_fields_win_over_image_user() {
        let q = UserRequest {
            run_as_user: Some(33),
            run_as_group: Some(7),
            supplemental_groups: &[100],
            ..req("root")
        };
        assert_eq!(
            r(&q).unwrap(),
            ResolvedUser {
                uid: 33,
                gid: 7,
                additional_gids: vec![7, 10, 100]
            }
        );
        let q = UserRequest {
            run_as_username: "www",
            ..req("")
        };
        assert_eq!(r(&q).unwrap().uid, 33);
        assert_eq!(resolve_user(&req("5"), None, None).unwrap().gid, 0);
    }

    #[test]
    fn strict_policy_leaves_out_the_images_group_memberships() {
        let q = UserRequest {
            supplemental_groups: &[100],
            strict_groups: true,
            ..req("www")
        };
        assert_eq!(
            r(&q).unwrap(),
            ResolvedUser {
                uid: 33,
                gid: 34,
                additional_gids: vec![34, 100]
            }
        );
    }
}
