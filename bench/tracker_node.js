// The Node peer of bench_tracker's memory figure: a Map of N open
// deviations keyed by their UUID text, each a small object with what the
// tracker's core keeps (consumer/track/track.c: six timestamps, the
// deadline terms, the receiver's unit and the reporting and receiving
// parties as shared strings, the hop) and what the feedback module keeps
// of its filing (consumer/track/feedback.c: the reporting unit, two in three
// from two shared strings, and a reply_reference of its own, 20 characters).
// Run by bench/tracker_vs_node.sh.
// usage: node --expose-gc tracker_node.js [N]   prints "bytes/deviation B"
'use strict';
const n = Number(process.argv[2] || 1000000);
const terms = {ackDays: 2, answerDays: 10};
const parties = ['VGR', '1490', '1480', '1401'];
const units = ['SE2120001561-SABO7', 'SE2321000131-E000000000001'];
const reportingUnits = ['SE2120001215-HSK0042', 'SE2321000131-E000000012345'];
const hex = (i, w) => i.toString(16).padStart(w, '0');

global.gc();
const before = process.memoryUsage().heapUsed;
const open = new Map();
const now = Date.now();
for (let i = 0; i < n; i++) {
  open.set(`00000000-0000-4000-8000-${hex(i, 12)}`, {
    routedAt: now, ackDeadline: now + 2 * 86400000, answerDeadline: now + 10 * 86400000,
    ackedAt: -1, answeredAt: -1, awaitingSince: now, terms,
    unit: units[i % units.length], hop: 0,
    reporter: parties[i % parties.length], receiver: parties[(i + 1) % parties.length],
    reportingUnit: i % 3 ? reportingUnits[i % 2] : null,
    replyReference: `TRESERVA-2026-${String(i % 1000000).padStart(6, '0')}`,
  });
}
global.gc();
const after = process.memoryUsage().heapUsed;
if (open.size !== n) process.exit(1);
console.log(`bytes/deviation ${((after - before) / n).toFixed(1)}`);
