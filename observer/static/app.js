// The observer page: renders the snapshots that /api/events streams, and
// posts actions to /api/*. No build step and no external resources.
(function () {
  "use strict";
  var state = null;       // the last snapshot
  var known = {};         // pid -> true, to highlight new incarnations
  var $ = function (id) { return document.getElementById(id); };

  // A token in the URL fragment (#token=...) is kept as a cookie so that
  // the event stream, which cannot send headers, carries it too.
  function takeToken() {
    var m = /(?:^#|&)token=([0-9a-f]+)/.exec(location.hash);
    if (!m) return false;
    document.cookie = "dist_token=" + m[1] + "; path=/; SameSite=Strict";
    history.replaceState(null, "", location.pathname);
    return true;
  }
  takeToken();

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function ago(t) {
    var s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (s < 60) return Math.round(s) + "s ago";
    if (s < 3600) return Math.round(s / 60) + "m ago";
    return Math.round(s / 3600) + "h ago";
  }
  function say(text, isError) {
    var el = $("message");
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  function post(path, body) {
    say(path + "…");
    return fetch("api/" + path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}), credentials: "same-origin"
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { say(j.error || ("HTTP " + r.status), true); return; }
        var errs = j.errors ? " (" + Object.keys(j.errors).map(function (k) { return k + ": " + j.errors[k]; }).join("; ") + ")" : "";
        say(j.message + errs, !!j.errors);
      });
    }).catch(function (e) { say(String(e), true); });
  }

  function renderMembers(s) {
    var rows = s.members.map(function (mb) {
      return '<tr data-member="' + esc(mb.name) + '" data-state="' + esc(mb.state) + '">' +
        "<td>" + esc(mb.name) + (mb.name === s.node ? " (this node)" : "") + "</td>" +
        '<td><span class="state ' + esc(mb.state) + '">' + esc(mb.state) + "</span></td>" +
        "<td>" + esc(mb.remote_address) + "</td><td>" + esc(mb.gossip_address) + "</td>" +
        "<td>" + ago(mb.since) + '</td><td class="act">' +
        (mb.state === "alive" ? '<button type="button" class="crash" data-node="' + esc(mb.name) + '">crash</button>' : "") +
        "</td></tr>";
    });
    $("members").tBodies[0].innerHTML = rows.join("");
  }

  function renderFaults(s) {
    var rules = {};
    s.nodes.forEach(function (n) { (n.faults || []).forEach(function (r) { rules[r] = (rules[r] || []).concat(n.name); }); });
    var keys = Object.keys(rules);
    $("faults").innerHTML = keys.length === 0 ? "no fault rules" : keys.map(function (r) {
      return '<span class="rule" title="set on ' + esc(rules[r].join(", ")) + '">' + esc(r) + "</span>";
    }).join("");
    var names = s.members.filter(function (mb) { return mb.state !== "left"; }).map(function (mb) { return mb.name; });
    var iso = $("isolate-nodes");
    if (iso.dataset.names !== names.join(",")) {
      iso.dataset.names = names.join(",");
      iso.innerHTML = names.map(function (n) {
        return '<label><input type="checkbox" value="' + esc(n) + '"> ' + esc(n) + "</label>";
      }).join(" ");
      var opts = ['<option value="*">*</option>'].concat(names.map(function (n) {
        return '<option value="' + esc(n) + '">' + esc(n) + "</option>";
      })).join("");
      $("delay-from").innerHTML = opts;
      $("delay-to").innerHTML = opts;
    }
  }

  // tree orders a node's processes depth first, children in start order as
  // the report lists them (by id, which grows with spawn order).
  function tree(procs) {
    var byParent = {}, ids = {};
    procs.forEach(function (p) { ids[p.id] = true; });
    procs.forEach(function (p) {
      var key = p.parent && ids[p.parent] ? p.parent : "";
      (byParent[key] = byParent[key] || []).push(p);
    });
    var out = [];
    (function walk(parent, depth) {
      (byParent[parent] || []).forEach(function (p) { out.push([p, depth]); walk(p.id, depth + 1); });
    })("", 0);
    return out;
  }

  function label(p) {
    if (p.child_id) return p.child_id;
    if (p.names && p.names.length) return p.names[0];
    return p.name;
  }

  function renderNodes(s) {
    var html = s.nodes.map(function (n) {
      if (n.error) {
        return '<div class="node" data-node="' + esc(n.name) + '"><h3>' + esc(n.name) +
          '</h3><p class="node-error">not inspected: ' + esc(n.error) + "</p></div>";
      }
      var rows = tree(n.processes).map(function (e) {
        var p = e[0], depth = e[1];
        var isNew = state && !known[p.pid] && p.child_restarts > 0;
        var sup = p.kind === "supervisor";
        return '<tr class="proc' + (isNew ? " fresh" : "") + '" data-pid="' + esc(p.pid) + '" data-node="' + esc(n.name) +
          '" data-child="' + esc(p.child_id || "") + '" data-restarts="' + p.child_restarts + '">' +
          '<td class="tree-label' + (sup ? " sup" : "") + '" style="padding-left:' + (0.6 + depth * 1.4) + 'em" title="' + esc(p.pid) + '">' +
          esc(label(p)) + (sup && p.strategy ? " <small>(" + esc(p.strategy) + ")</small>" : "") + "</td>" +
          "<td>" + esc(p.kind) + "</td>" +
          '<td class="num">' + p.mailbox + "</td>" +
          '<td class="num">' + p.rate.toFixed(1) + "</td>" +
          '<td class="num' + (p.child_restarts > 0 ? " restarted" : "") + '">' + p.child_restarts + "</td>" +
          '<td class="num">' + (sup ? p.restarts : "") + "</td>" +
          '<td class="info">' + esc(p.info) + "</td>" +
          '<td class="act"><button type="button" class="kill" data-pid="' + esc(p.pid) + '" data-supervised="' + (p.child_type ? "1" : "0") +
          '" title="' + (p.child_type ? "kill it; its supervisor decides what happens next" : "kill it; no supervisor restarts it") + '">kill</button></td></tr>';
      });
      return '<div class="node" data-node="' + esc(n.name) + '"><h3>' + esc(n.name) + " <small>" + esc(n.remote_address) +
        ", " + n.processes.length + " actors" + (n.processes_omitted ? " (" + n.processes_omitted + " more not shown)" : "") +
        (n.control ? "" : ", read-only") + "</small></h3>" +
        "<table><thead><tr><th>actor</th><th>kind</th><th>mailbox</th><th>msg/s</th><th>restarted</th><th>restarts done</th><th>state</th><th class=\"act\"></th></tr></thead><tbody>" +
        rows.join("") + "</tbody></table></div>";
    });
    $("nodes").innerHTML = html.join("");
    known = {};
    s.nodes.forEach(function (n) { (n.processes || []).forEach(function (p) { known[p.pid] = true; }); });
  }

  // noteChanges lists what changed since the previous snapshot: member
  // states, restarts, fault rules.
  var events = [];
  function noteChanges(prev, s) {
    if (!prev) return;
    var t = new Date(s.time).toLocaleTimeString();
    var before = {};
    prev.members.forEach(function (m) { before[m.name] = m.state; });
    s.members.forEach(function (m) {
      if (before[m.name] !== m.state) events.unshift(t + "  " + m.name + " is " + m.state + (before[m.name] ? " (was " + before[m.name] + ")" : ""));
    });
    var restarts = {};
    prev.nodes.forEach(function (n) { (n.processes || []).forEach(function (p) { if (p.child_id) restarts[n.name + "/" + p.parent + "/" + p.child_id] = p.child_restarts; }); });
    s.nodes.forEach(function (n) {
      (n.processes || []).forEach(function (p) {
        var k = n.name + "/" + p.parent + "/" + p.child_id;
        if (p.child_id && restarts[k] !== undefined && p.child_restarts > restarts[k]) {
          events.unshift(t + "  " + n.name + ": " + p.child_id + " restarted by its supervisor (" + p.child_restarts + " so far)");
        }
      });
    });
    var rules = function (x) { return x.nodes.length ? (x.nodes[0].faults || []).join("; ") : ""; };
    if (rules(prev) !== rules(s)) events.unshift(t + "  fault rules on " + s.node + ": " + (rules(s) || "none"));
    events = events.slice(0, 20);
    $("events").innerHTML = events.map(function (e) { return "<li>" + esc(e) + "</li>"; }).join("");
  }

  function render(s) {
    noteChanges(state, s);
    document.body.classList.toggle("readonly", !s.actions);
    $("node").textContent = "served by " + s.node;
    $("mode").textContent = s.actions ? "actions enabled" : "read-only";
    renderMembers(s);
    renderFaults(s);
    renderNodes(s);
    state = s;
  }

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!(t instanceof HTMLElement)) return;
    if (t.classList.contains("kill")) {
      // An actor without a supervisor is not restarted: ask first.
      if (t.dataset.supervised !== "1" && !window.confirm("No supervisor will restart " + t.dataset.pid + ". Kill it?")) return;
      post("kill", { pid: t.dataset.pid });
    }
    else if (t.classList.contains("crash")) post("crash", { node: t.dataset.node });
    else if (t.id === "partition-btn") {
      var picked = Array.prototype.map.call(document.querySelectorAll("#isolate-nodes input:checked"), function (i) { return i.value; });
      if (picked.length === 0) { say("pick the nodes to isolate first", true); return; }
      post("partition", { groups: [picked] });
    } else if (t.id === "heal-btn") post("heal");
    else if (t.id === "clear-btn") post("clear");
    else if (t.id === "delay-btn") {
      post("delay", { from: $("delay-from").value, to: $("delay-to").value, delay: ($("delay-ms").value || "0") + "ms" });
    }
  });

  var es = null;
  window.addEventListener("hashchange", function () {
    if (takeToken() && (es === null || es.readyState === EventSource.CLOSED)) {
      say("");
      connect();
    }
  });

  function connect() {
    es = new EventSource("api/events");
    es.addEventListener("snapshot", function (e) {
      $("conn").textContent = "live";
      $("conn").className = "conn";
      try { render(JSON.parse(e.data)); } catch (err) { say("bad snapshot: " + err, true); }
    });
    es.onerror = function () {
      $("conn").textContent = "disconnected, retrying";
      $("conn").className = "conn down";
      // An unauthorised stream fails without a status: ask once to explain.
      fetch("api/cluster", { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) { r.json().then(function (j) { say(j.error, true); }); es.close(); }
      }).catch(function () {});
    };
  }
  connect();
})();
