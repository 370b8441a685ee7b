// Real front ends the tests put in front of vmessd, each run in the foreground with a config of the
// test's own on a free loopback port: nothing of a system service (its config, ports, logs, temp
// directories) is used.

import Foundation
import TestSupport

extension EndToEndTestCase {
    static let haproxyPath = "/usr/sbin/haproxy"
    static let nginxPath = "/usr/sbin/nginx"

    /// haproxy (`-db`) in TCP mode forwarding one frontend port to `server` (its `server` line after
    /// the name: "127.0.0.1:PORT send-proxy-v2 source 127.0.0.3", "/path/to.sock send-proxy-v2").
    /// Returns the frontend port.
    func startHAProxy(server: String) throws -> UInt16 {
        let haproxy = try Tool.require(Self.haproxyPath, install: "apt-get install haproxy")
        let port = try FreePort.tcp()
        let name = nextName("haproxy")
        let config = """
            global
                maxconn 256
            defaults
                mode tcp
                timeout connect 5s
                timeout client 60s
                timeout server 60s
            frontend in
                bind 127.0.0.1:\(port)
                default_backend vmessd
            backend vmessd
                server s \(server)

            """
        let path = try writeFile("\(name).cfg", config)
        let check = try run(haproxy, ["-c", "-f", path])
        guard check.status == 0 else { throw HarnessError("haproxy -c: \(check.stdout) \(check.stderr)") }
        let process = try launch(name, haproxy, ["-db", "-f", path])
        try waitForTCPPort(port, timeout: Self.startupTimeout, stillAlive: { process.isRunning })
        return port
    }

    /// nginx (`daemon off`, one process) proxying HTTP under `path`, WebSocket upgrades included, to
    /// the Unix socket `upstreamSocket`. Returns its port.
    func startNginx(upstreamSocket: String, path: String) throws -> UInt16 {
        try startNginx { port in
            """
            listen 127.0.0.1:\(port);
            location \(path) {
                proxy_pass http://unix:\(upstreamSocket);
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection "upgrade";
                proxy_set_header Host $host;
                proxy_read_timeout 300s;
                proxy_send_timeout 300s;
            }
            """
        }
    }

    /// nginx (`daemon off`, one process) with one `server` block whose body `server` gives for the
    /// port it listens on. Returns that port.
    func startNginx(server: (UInt16) -> String) throws -> UInt16 {
        let nginx = try Tool.require(Self.nginxPath, install: "apt-get install nginx")
        let port = try FreePort.tcp()
        let name = nextName("nginx")
        let prefix = workDir.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: prefix + "/tmp", withIntermediateDirectories: true)
        let config = """
            worker_processes 1;
            master_process off;
            error_log \(prefix)/error.log info;
            pid \(prefix)/nginx.pid;
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path \(prefix)/tmp/body;
                proxy_temp_path \(prefix)/tmp/proxy;
                fastcgi_temp_path \(prefix)/tmp/fastcgi;
                uwsgi_temp_path \(prefix)/tmp/uwsgi;
                scgi_temp_path \(prefix)/tmp/scgi;
                server {
            \(server(port))
                }
            }

            """
        let file = try writeFile("\(name).conf", config)
        // -e: the error log before the config is read (the compiled-in one is the system's).
        let arguments = ["-p", prefix, "-e", "\(prefix)/error.log", "-c", file]
        let check = try run(nginx, arguments + ["-t"])
        guard check.status == 0 else { throw HarnessError("nginx -t: \(check.stdout) \(check.stderr)") }
        let process = try launch(name, nginx, arguments + ["-g", "daemon off;"])
        try waitForTCPPort(port, timeout: Self.startupTimeout, stillAlive: { process.isRunning })
        return port
    }
}
