// A real Prometheus client's view of vmessd's metrics endpoint: Python's `prometheus_client` parser
// (text_string_to_metric_families, the official client library's) reads what one GET returns; the
// script prints every sample as JSON ({"name{label=value,...}": value}, labels sorted) together with
// the status and Content-Type, so the test compares exact series.

import Foundation
import TestSupport

struct MetricsScraper {
    let port: UInt16
    let workDir: URL

    struct Scrape {
        var status: Int
        var contentType: String
        /// "vmessd_traffic_bytes_total{direction=up}" → value.
        var samples: [String: Double]

        subscript(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples[MetricsScraper.key(name, labels)]
        }
    }

    static func key(_ name: String, _ labels: [String: String]) -> String {
        labels.isEmpty ? name : name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
    }

    /// GET (or another method) `path`; samples are parsed only from a 200.
    func scrape(path: String = "/metrics", method: String = "GET") throws -> Scrape {
        let script = workDir.appendingPathComponent("scrape_metrics.py")
        if !FileManager.default.fileExists(atPath: script.path) {
            try Self.python.write(to: script, atomically: true, encoding: .utf8)
        }
        let result = try APIClient.run("/usr/bin/env", ["python3", script.path, "http://127.0.0.1:\(port)\(path)", method])
        guard result.status == 0,
              let json = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
            throw HarnessError("scrape_metrics.py failed (\(result.status)): \(result.output)")
        }
        return Scrape(status: json["status"] as? Int ?? 0, contentType: json["contentType"] as? String ?? "",
                      samples: (json["samples"] as? [String: Double]) ?? [:])
    }

    static let python = #"""
    import json, sys, urllib.error, urllib.request
    from prometheus_client.parser import text_string_to_metric_families

    url, method = sys.argv[1], sys.argv[2]
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10)
        status, body, ctype = response.status, response.read().decode(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, body, ctype = e.code, "", e.headers.get("Content-Type", "")
    samples = {}
    if status == 200:
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                key = s.name + ("{" + labels + "}" if labels else "")
                if key in samples:
                    sys.exit(f"duplicate series {key}")
                samples[key] = s.value
    print(json.dumps({"status": status, "contentType": ctype, "samples": samples}))
    """#
}
