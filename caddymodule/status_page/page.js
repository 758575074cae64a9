'use strict';
// The status page: it fetches the edge's figures from its own path
// (?format=json) every few seconds and draws them. Rates come from two
// consecutive samples (the previous poll, or the newest of the history).
// Every figure is optional: the page shows what the edge reports and "–"
// for the rest. Text from the edge (cache keys, IDs) only ever goes into
// textContent.
(function () {
	var source = location.pathname + '?format=json';
	var refreshMs = 5000;
	var previous = null; // {at: ms, stats: {...}}
	var timer = null;

	// Where figures that other parts of the edge add to the stats may be.
	var MISSES = ['cache.misses'];
	var OLD = ['cache.old_answers', 'cache.old', 'cache.stale_answers', 'cache.stale'];
	var HOT = ['hot_set', 'hotset', 'hot', 'cache.hot_set', 'cache.hot'];
	var IMAGES = ['images', 'image_service', 'image'];
	var GROUPS = ['groups'];
	var DONE = {removal: 'cache.removed', pregeneration: 'cache.pregenerated'};

	function byId(id) { return document.getElementById(id); }

	function el(tag, text, cls) {
		var e = document.createElement(tag);
		if (text !== undefined && text !== null) { e.textContent = String(text); }
		if (cls) { e.className = cls; }
		return e;
	}

	function clear(e) {
		while (e.firstChild) { e.removeChild(e.firstChild); }
		return e;
	}

	function get(obj, path) {
		var parts = path.split('.');
		for (var i = 0; i < parts.length; i++) {
			if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) { return undefined; }
			obj = obj[parts[i]];
		}
		return obj;
	}

	function first(obj, paths) {
		for (var i = 0; i < paths.length; i++) {
			var v = get(obj, paths[i]);
			if (v !== undefined && v !== null) { return {path: paths[i], value: v}; }
		}
		return null;
	}

	function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }

	function sum(v) {
		if (num(v) !== null) { return v; }
		if (v === null || typeof v !== 'object') { return null; }
		var total = 0;
		Object.keys(v).forEach(function (k) { if (num(v[k]) !== null) { total += v[k]; } });
		return total;
	}

	function fmt(n) {
		if (num(n) === null) { return '–'; }
		if (Number.isInteger(n)) { return n.toLocaleString('en-US'); }
		var a = Math.abs(n);
		return n.toLocaleString('en-US', {maximumFractionDigits: a >= 100 ? 0 : a >= 10 ? 1 : 2});
	}

	function fmtRate(r) { return r === null ? '–' : fmt(Math.round(r * 10) / 10); }

	function fmtPercent(r) { return r === null ? '–' : (Math.round(r * 1000) / 10).toFixed(1) + ' %'; }

	function fmtTime(ms) {
		var d = new Date(ms);
		return isNaN(d.getTime()) ? '–' : d.toLocaleTimeString('en-GB');
	}

	function rate(cur, prev, seconds) {
		if (cur === null || prev === null || !(seconds > 0) || cur < prev) { return null; }
		return (cur - prev) / seconds;
	}

	// flatten lists the numbers and booleans of a value by dotted path, as
	// the edge's history does; lists are left out.
	function flatten(v, prefix, out) {
		if (typeof v === 'number' || typeof v === 'boolean') {
			if (prefix) { out.push([prefix, v]); }
		} else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
			Object.keys(v).sort().forEach(function (k) { flatten(v[k], prefix ? prefix + '.' + k : k, out); });
		}
		return out;
	}

	// History: the edge's samples of the last 10 minutes.
	function series(history, name) {
		var col = history && history.series ? history.series[name] : null;
		return Array.isArray(col) ? col.map(num) : [];
	}

	function times(history) {
		return history && Array.isArray(history.times) ? history.times : [];
	}

	// counterRates turns a counter's samples into rates per second.
	function counterRates(values, at) {
		var out = [];
		for (var i = 1; i < values.length; i++) {
			out.push(rate(values[i], values[i - 1], (at[i] - at[i - 1]) / 1000));
		}
		return out;
	}

	function sumSeries(history, prefix) {
		var names = history && history.series ? Object.keys(history.series) : [];
		var n = times(history).length;
		var out = [];
		for (var i = 0; i < n; i++) {
			var total = null;
			names.forEach(function (name) {
				if (name.indexOf(prefix + '.') === 0) {
					var v = num(history.series[name][i]);
					if (v !== null) { total = (total || 0) + v; }
				}
			});
			out.push(total);
		}
		return out;
	}

	var SVG = 'http://www.w3.org/2000/svg';

	// sparkline draws values (null: a gap) as an inline SVG polyline.
	function sparkline(values, title) {
		var w = 120, h = 28;
		var svg = document.createElementNS(SVG, 'svg');
		svg.setAttribute('class', 'spark');
		svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
		svg.setAttribute('preserveAspectRatio', 'none');
		var t = document.createElementNS(SVG, 'title');
		var known = values.filter(function (v) { return v !== null; });
		var max = known.length ? Math.max.apply(null, known) : 0;
		var min = known.length ? Math.min(0, Math.min.apply(null, known)) : 0;
		t.textContent = title + ': ' + (known.length ? 'min ' + fmt(Math.min.apply(null, known)) + ', max ' + fmt(max) : 'no samples yet');
		svg.appendChild(t);
		var base = document.createElementNS(SVG, 'line');
		base.setAttribute('x1', '0');
		base.setAttribute('x2', String(w));
		base.setAttribute('y1', String(h - 1));
		base.setAttribute('y2', String(h - 1));
		svg.appendChild(base);
		if (values.length < 2) { return svg; }
		var span = max - min || 1;
		var points = [];
		var flush = function () {
			if (points.length > 1) {
				var line = document.createElementNS(SVG, 'polyline');
				line.setAttribute('points', points.join(' '));
				svg.appendChild(line);
			}
			points = [];
		};
		values.forEach(function (v, i) {
			if (v === null) { flush(); return; }
			var x = (i / (values.length - 1)) * w;
			var y = h - 1 - ((v - min) / span) * (h - 2);
			points.push(x.toFixed(1) + ',' + y.toFixed(1));
		});
		flush();
		return svg;
	}

	function setSpark(id, values, title) {
		clear(byId(id)).appendChild(sparkline(values, title));
	}

	// renderValue shows any value the edge reports: tables for objects and
	// lists of objects, text for the rest.
	function renderValue(v, depth) {
		if (v === null || v === undefined) { return el('span', '–', 'muted'); }
		if (typeof v === 'number') { return el('span', fmt(v), 'num'); }
		if (typeof v === 'boolean') { return el('span', v ? 'yes' : 'no', v ? 'ok' : 'error'); }
		if (typeof v !== 'object') { return el('span', String(v)); }
		if (depth > 4) { return el('span', JSON.stringify(v)); }
		if (Array.isArray(v)) {
			if (v.length === 0) { return el('span', 'none', 'muted'); }
			var objects = v.every(function (x) { return x !== null && typeof x === 'object' && !Array.isArray(x); });
			if (!objects) { return el('span', v.map(String).join(', ')); }
			var cols = [];
			v.forEach(function (row) { Object.keys(row).forEach(function (k) { if (cols.indexOf(k) < 0) { cols.push(k); } }); });
			var table = el('table');
			var head = table.appendChild(el('thead')).appendChild(el('tr'));
			cols.forEach(function (c) { head.appendChild(el('th', c)); });
			var body = table.appendChild(el('tbody'));
			v.forEach(function (row) {
				var tr = body.appendChild(el('tr'));
				cols.forEach(function (c) { tr.appendChild(el('td')).appendChild(renderValue(row[c], depth + 1)); });
			});
			return table;
		}
		var keys = Object.keys(v);
		if (keys.length === 0) { return el('span', 'none', 'muted'); }
		var kv = el('table', null, 'kv');
		var tbody = kv.appendChild(el('tbody'));
		keys.forEach(function (k) {
			var tr = tbody.appendChild(el('tr'));
			tr.appendChild(el('th', k));
			tr.appendChild(el('td')).appendChild(renderValue(v[k], depth + 1));
		});
		return kv;
	}

	function renderSection(id, stats, paths, none) {
		var box = clear(byId(id));
		var found = first(stats, paths);
		if (!found) {
			box.appendChild(el('p', none, 'muted'));
			return;
		}
		box.appendChild(renderValue(found.value, 0));
	}

	function renderTraffic(stats, history, prev) {
		var hits = num(get(stats, 'cache.hits'));
		var missesFound = first(stats, MISSES);
		var misses = missesFound ? num(missesFound.value) : null;
		var renders = sum(get(stats, 'cache.renders'));
		var now = Date.parse(stats.time);
		var seconds = prev ? (now - prev.at) / 1000 : 0;
		var pHits = prev ? num(get(prev.stats, 'cache.hits')) : null;
		var pMissesFound = prev ? first(prev.stats, MISSES) : null;
		var pMisses = pMissesFound ? num(pMissesFound.value) : null;
		var pRenders = prev ? sum(get(prev.stats, 'cache.renders')) : null;

		var ratio = byId('hit-ratio');
		if (hits !== null && misses !== null && hits + misses > 0) {
			ratio.textContent = fmtPercent(hits / (hits + misses));
			var dh = rate(hits, pHits, 1), dm = rate(misses, pMisses, 1);
			byId('hit-ratio-sub').textContent = dh !== null && dm !== null && dh + dm > 0 ?
				'last ' + fmt(Math.round(seconds)) + ' s: ' + fmtPercent(dh / (dh + dm)) : 'since start';
		} else {
			ratio.textContent = '–';
			byId('hit-ratio-sub').textContent = misses === null ? 'misses not reported' : 'no requests yet';
		}

		var at = times(history);
		var hitsRates = counterRates(series(history, 'cache.hits'), at);
		if (misses !== null) {
			byId('requests-label').textContent = 'Requests/s';
			var r = rate(hits + misses, pHits !== null && pMisses !== null ? pHits + pMisses : null, seconds);
			byId('requests-rate').textContent = fmtRate(r);
			var h = series(history, 'cache.hits'), m = series(history, missesFound.path);
			var both = h.map(function (v, i) { return v === null || m[i] === null || m[i] === undefined ? null : v + m[i]; });
			setSpark('requests-spark', counterRates(both, at), 'requests/s');
		} else {
			byId('requests-label').textContent = 'Hits/s';
			byId('requests-rate').textContent = fmtRate(rate(hits, pHits, seconds));
			setSpark('requests-spark', hitsRates, 'hits/s');
		}
		byId('renders-rate').textContent = fmtRate(rate(renders, pRenders, seconds));
		setSpark('renders-spark', counterRates(sumSeries(history, 'cache.renders'), at), 'renders/s');

		var old = first(stats, OLD);
		var oldValue = byId('old-answers');
		if (old && num(old.value) !== null) {
			oldValue.textContent = fmt(old.value);
			oldValue.setAttribute('data-figure', old.path);
			var pOld = prev ? first(prev.stats, [old.path]) : null;
			var or = rate(old.value, pOld ? num(pOld.value) : null, seconds);
			byId('old-rate').textContent = or === null ? 'since start' : fmtRate(or) + ' /s';
		} else {
			oldValue.textContent = '–';
			oldValue.removeAttribute('data-figure');
			byId('old-rate').textContent = 'not reported';
		}
	}

	function renderQueues(stats, history) {
		var rows = clear(byId('queue-rows'));
		var queues = get(stats, 'queues');
		var names = queues && typeof queues === 'object' ? Object.keys(queues) : [];
		if (names.length === 0) {
			var tr = rows.appendChild(el('tr'));
			tr.appendChild(el('td', 'no queues reported', 'muted'));
			return;
		}
		names.forEach(function (name) {
			var q = queues[name];
			var length = num(get(q, 'length'));
			var tr = rows.appendChild(el('tr'));
			tr.setAttribute('data-queue', name);
			tr.appendChild(el('td', name));
			var len = tr.appendChild(el('td', fmt(length), 'num length'));
			len.setAttribute('data-figure', 'queues.' + name + '.length');
			var values = series(history, 'queues.' + name + '.length');
			values.push(length);
			tr.appendChild(el('td')).appendChild(sparkline(values, name + ' queue length'));
			var donePath = DONE[name];
			var done = tr.appendChild(el('td', donePath ? fmt(num(get(stats, donePath))) : '–', 'num done'));
			if (donePath) { done.setAttribute('data-figure', donePath); }
			var details = {};
			if (q && typeof q === 'object') {
				Object.keys(q).forEach(function (k) { if (k !== 'length') { details[k] = q[k]; } });
			}
			tr.appendChild(el('td')).appendChild(Object.keys(details).length ? renderValue(details, 1) : el('span', '', 'muted'));
		});
	}

	function renderStaging(stats, history, prev) {
		var box = clear(byId('staging-body'));
		var s = get(stats, 'staging');
		if (!s || typeof s !== 'object') {
			box.appendChild(el('p', 'not configured', 'muted'));
			return;
		}
		var table = box.appendChild(el('table', null, 'kv'));
		var body = table.appendChild(el('tbody'));
		var row = function (label, node) {
			var tr = body.appendChild(el('tr'));
			tr.appendChild(el('th', label));
			tr.appendChild(el('td')).appendChild(node);
			return tr;
		};
		row('connected', renderValue(s.connected, 1));
		var lag = series(history, 'staging.lag_seconds');
		lag.push(num(s.lag_seconds));
		var lagCell = el('span');
		lagCell.appendChild(el('span', fmt(num(s.lag_seconds)) + ' s', 'num'));
		lagCell.appendChild(sparkline(lag, 'lag (s)'));
		row('lag', lagCell);
		var seconds = prev ? (Date.parse(stats.time) - prev.at) / 1000 : 0;
		var pEvents = prev ? num(get(prev.stats, 'staging.events')) : null;
		row('events/s', el('span', fmtRate(rate(num(s.events), pEvents, seconds)), 'num'));
		row('events applied', renderValue(s.events, 1));
		var applied = num(s.applied_source_time_ms);
		row('newest applied change', el('span', applied ? new Date(applied).toISOString() : '–'));
		Object.keys(s).forEach(function (k) {
			if (['connected', 'lag_seconds', 'events', 'applied_source_time_ms'].indexOf(k) < 0) {
				row(k, renderValue(s[k], 1));
			}
		});
	}

	function describe(inv) {
		var what = (inv.kind || '?') + (inv.id ? ' ' + inv.id : '');
		if (inv.detail) { what += ' (' + inv.detail + ')'; }
		return what;
	}

	function renderInvalidations(stats) {
		var inv = get(stats, 'invalidations') || {};
		var recent = Array.isArray(inv.recent) ? inv.recent : [];
		var total = num(inv.total);
		var label = byId('invalidations-total');
		label.textContent = total === null ? '' : '(' + fmt(total) + ' since start)';
		label.setAttribute('data-figure', 'invalidations.total');
		var rows = clear(byId('invalidation-rows'));
		if (recent.length === 0) {
			rows.appendChild(el('tr')).appendChild(el('td', 'none yet', 'muted'));
			return;
		}
		recent.forEach(function (r) {
			var tr = rows.appendChild(el('tr'));
			tr.appendChild(el('td', fmtTime(Date.parse(r.time))));
			tr.appendChild(el('td', r.source));
			tr.appendChild(el('td', describe(r), 'what'));
			tr.appendChild(el('td', fmt(num(r.files)), 'num files'));
			tr.appendChild(el('td', fmt(num(r.removal)), 'num removal'));
			tr.appendChild(el('td', fmt(num(r.pregeneration)), 'num pregeneration'));
		});
	}

	function renderFigures(stats) {
		var rows = clear(byId('all-figures'));
		flatten(stats, '', []).forEach(function (f) {
			var tr = rows.appendChild(el('tr'));
			tr.appendChild(el('th', f[0]));
			var td = tr.appendChild(el('td', String(f[1]), 'num'));
			td.setAttribute('data-figure', f[0]);
		});
	}

	function render(data) {
		var stats = data && data.stats;
		if (!stats || typeof stats !== 'object') { throw new Error('no stats in the answer'); }
		var history = data.history || {};
		var now = Date.parse(stats.time);
		var prev = previous;
		if (!prev) {
			// The newest sample of the history, if it is not this moment.
			var at = times(history);
			var last = at.length - 1;
			if (last >= 0 && now - at[last] >= 1000) {
				var sample = {};
				Object.keys(history.series || {}).forEach(function (name) {
					var v = num(history.series[name][last]);
					if (v === null) { return; }
					var parts = name.split('.');
					var o = sample;
					for (var i = 0; i < parts.length - 1; i++) {
						if (typeof o[parts[i]] !== 'object' || o[parts[i]] === null) { o[parts[i]] = {}; }
						o = o[parts[i]];
					}
					o[parts[parts.length - 1]] = v;
				});
				prev = {at: at[last], stats: sample};
			}
		}
		renderTraffic(stats, history, prev);
		renderQueues(stats, history);
		renderStaging(stats, history, prev);
		renderSection('groups-body', stats, GROUPS, 'no groups reported');
		renderSection('hotset-body', stats, HOT, 'not reported');
		renderSection('images-body', stats, IMAGES, 'not reported');
		renderInvalidations(stats);
		renderFigures(stats);
		previous = {at: now, stats: stats};
		var state = byId('state');
		state.className = 'muted';
		state.textContent = 'figures of ' + fmtTime(now) + ', every ' + fmt(refreshMs / 1000) + ' s';
		document.body.setAttribute('data-updated', String(now));
	}

	function schedule() {
		clearTimeout(timer);
		timer = setTimeout(poll, refreshMs);
	}

	function poll() {
		if (document.hidden) { return; } // resumed by visibilitychange
		fetch(source, {cache: 'no-store', credentials: 'same-origin', headers: {Accept: 'application/json'}})
			.then(function (resp) {
				if (!resp.ok) { throw new Error('HTTP ' + resp.status); }
				return resp.json();
			})
			.then(function (data) {
				var r = num(data && data.refresh_seconds);
				if (r !== null && r >= 1) { refreshMs = r * 1000; }
				render(data);
			})
			.catch(function (err) {
				var state = byId('state');
				state.className = 'error';
				state.textContent = 'cannot read the figures: ' + (err && err.message ? err.message : String(err)) +
					' (trying again)';
			})
			.then(schedule);
	}

	document.addEventListener('visibilitychange', function () {
		if (!document.hidden) { poll(); }
	});
	poll();
})();
