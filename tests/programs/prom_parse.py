"""Parses Prometheus text exposition format from stdin with prometheus_client's own
parser and prints the families as JSON: [{"name", "type", "help", "samples":
[[name, labels, value], ...]}, ...]. Exits non-zero (with the parser's message) when the
text does not parse."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = []
for f in text_string_to_metric_families(sys.stdin.read()):
    families.append(
        {
            "name": f.name,
            "type": f.type,
            "help": f.documentation,
            "samples": [[s.name, s.labels, s.value] for s in f.samples],
        }
    )
json.dump(families, sys.stdout)
