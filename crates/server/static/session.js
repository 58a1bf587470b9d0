// Wristband browser session: refreshes the access cookie before it expires.
//
// - Schedules a refresh at 75% of the access token's remaining lifetime (from the
//   <meta name="wb-expires-at"> tag, then from each refresh's answer).
// - One refresh at a time across tabs: navigator.locks ('wristband-refresh'); a tab that
//   waited for the lock and finds the session already refreshed does not refresh again.
// - After a refresh, the new expires_at goes out on BroadcastChannel('wristband-session'),
//   so that other tabs reschedule instead of refreshing (also the fallback without locks).
// - Sends the CSRF cookie's value in X-CSRF-Token.
// - Calls the service under the public URL's path prefix, from <meta name="wb-base">
//   (empty when the service is not mounted under a prefix).
// - window.wristband.refreshNow() refreshes at once and resolves to the HTTP status.
(function () {
  'use strict';

  var LOCK = 'wristband-refresh';
  var CHANNEL = 'wristband-session';
  var MIN_DELAY_MS = 5000;
  var MAX_DELAY_MS = 2147483647;

  function meta(name) {
    var m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.getAttribute('content') : null;
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split(';') : [];
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].trim();
      var eq = kv.indexOf('=');
      if (eq > 0 && kv.slice(0, eq) === name) {
        return decodeURIComponent(kv.slice(eq + 1));
      }
    }
    return '';
  }

  var base = meta('wb-base') || '';
  var csrfCookie = meta('wb-csrf-cookie') || '__Host-wb_csrf';
  var expiresAt = Number(meta('wb-expires-at')) || 0;
  // Server time minus this browser's time, so that a skewed clock does not matter.
  var serverNow = Number(meta('wb-server-time'));
  var offset = serverNow ? serverNow - Date.now() / 1000 : 0;
  var timer = null;
  var channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;

  function remaining() {
    return expiresAt - (Date.now() / 1000 + offset);
  }

  function schedule() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (!expiresAt) {
      return;
    }
    var delay = Math.max(remaining() * 750, MIN_DELAY_MS);
    timer = setTimeout(function () {
      refresh(false);
    }, Math.min(delay, MAX_DELAY_MS));
  }

  function adopt(newExpiresAt) {
    if (newExpiresAt > expiresAt) {
      expiresAt = newExpiresAt;
      schedule();
    }
  }

  function post() {
    return fetch(base + '/v1/session/refresh', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': readCookie(csrfCookie) }
    }).then(function (r) {
      if (!r.ok) {
        if (timer) {
          clearTimeout(timer);
          timer = null;
        }
        window.dispatchEvent(new CustomEvent('wristband:ended', { detail: r.status }));
        return r.status;
      }
      return r.json().then(function (body) {
        offset = body.expires_at - body.expires_in - Date.now() / 1000;
        expiresAt = body.expires_at;
        if (channel) {
          channel.postMessage({ expires_at: expiresAt });
        }
        schedule();
        return r.status;
      });
    }, function () {
      // Offline or the server is down: try again later.
      schedule();
      return 0;
    });
  }

  function refresh(force) {
    var seen = expiresAt;
    if (navigator.locks && typeof navigator.locks.request === 'function') {
      return navigator.locks.request(LOCK, function () {
        // Another tab refreshed while this one waited for the lock.
        if (!force && expiresAt > seen) {
          return 200;
        }
        return post();
      });
    }
    return post();
  }

  if (channel) {
    channel.onmessage = function (e) {
      if (e.data && typeof e.data.expires_at === 'number') {
        adopt(e.data.expires_at);
      }
    };
  }

  // Timers are slowed in background tabs: catch up when the tab is shown again.
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible' && expiresAt && remaining() < 60) {
      refresh(false);
    }
  });

  window.wristband = {
    refreshNow: function () {
      return refresh(true);
    }
  };

  schedule();
})();
