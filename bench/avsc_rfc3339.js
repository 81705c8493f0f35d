// Shared by the Node peers (codec_avsc.js, intake_node.js): avsc's
// timestamp-millis as avvik's JSON intake takes it, an RFC 3339 string.
'use strict';
const avsc = require('avsc');

class Rfc3339 extends avsc.types.LogicalType {
  _fromValue(ms) { return new Date(ms).toISOString(); }
  _toValue(text) {
    const ms = typeof text === 'string' ? Date.parse(text) : NaN;
    return Number.isNaN(ms) ? undefined : ms;
  }
  _resolve(type) { return type.typeName === 'long' ? (v) => v : undefined; }
}

module.exports = Rfc3339;
