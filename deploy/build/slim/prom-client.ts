// What the bundles get for `import … from 'prom-client'` (deploy/build/build.ts aliases it): the parts src/ uses,
// from prom-client's own files, instead of its index, which also loads the Summary (and its t-digest), the
// Pushgateway (node:http, node:https, node:zlib) and the cluster aggregator (node:cluster). src/ imports Registry,
// Counter, Gauge, Histogram and collectDefaultMetrics; a name missing here fails the build. prom-client is pinned to
// an exact version in package.json.
import Counter from 'prom-client/lib/counter.js';
import collectDefaultMetrics from 'prom-client/lib/defaultMetrics.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';

export { Counter, Gauge, Histogram, Registry, collectDefaultMetrics };
