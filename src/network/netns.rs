//! Network namespaces that outlive processes: a file under crid's state dir,
//! bind-mounted from a namespace created on a dedicated OS thread.
