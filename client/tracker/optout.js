/* edgetrack: this browser carries the edge's optout cookie, so nothing is collected. See docs/TRACKER.md. */
(() => {
  "use strict";
  try { localStorage.removeItem("et_q"); localStorage.removeItem("et_s"); } catch (e) { /* storage off */ }
  window.edgetrack = Object.assign(function () {}, { loaded: true, optedOut: true });
})();
