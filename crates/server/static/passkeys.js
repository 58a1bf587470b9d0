// Wristband passkeys: the browser side of the WebAuthn ceremonies of the hosted pages.
//
// - A button with data-passkey="sign-in" signs in without a password
//   (POST /v1/webauthn/login/start, navigator.credentials.get, /v1/webauthn/login/finish).
// - data-passkey="second-step" (with data-mfa-token) finishes the second step of a sign-in
//   (POST /v1/login/mfa/webauthn, get, POST /v1/login/mfa with method webauthn).
// - data-passkey="register" (in a form with a "name" input) registers a passkey for the
//   signed-in user (POST /account/passkeys/register/start, create, .../finish, with the
//   session's cookies) and reloads the page; it sends the CSRF cookie's value in
//   X-CSRF-Token.
// - Tokens always come back as cookies (delivery "cookie"); after a sign-in the browser
//   goes to the button's data-return-to, else to the account page.
// - Messages go to the element named by the button's data-status (role="status").
// Options and credentials travel in WebAuthn's JSON form: binary fields as base64url.
(function () {
  'use strict';

  function meta(name) {
    var m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.getAttribute('content') : null;
  }

  var base = meta('wb-base') || '';
  var csrfCookie = meta('wb-csrf-cookie') || '__Host-wb_csrf';

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

  function fromB64url(text) {
    var b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) {
      b64 += '=';
    }
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = '';
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function creationOptions(o) {
    o.challenge = fromB64url(o.challenge);
    o.user.id = fromB64url(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) {
      c.id = fromB64url(c.id);
    });
    return o;
  }

  function requestOptions(o) {
    o.challenge = fromB64url(o.challenge);
    (o.allowCredentials || []).forEach(function (c) {
      c.id = fromB64url(c.id);
    });
    return o;
  }

  function registrationJson(cred) {
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        clientDataJSON: toB64url(cred.response.clientDataJSON),
        attestationObject: toB64url(cred.response.attestationObject)
      },
      extensions: cred.getClientExtensionResults()
    };
  }

  function assertionJson(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null
      },
      extensions: cred.getClientExtensionResults()
    };
  }

  function post(path, body, csrf) {
    var headers = { 'Content-Type': 'application/json' };
    if (csrf) {
      headers['X-CSRF-Token'] = readCookie(csrfCookie);
    }
    return fetch(base + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: headers,
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var e = new Error(j.error_description || ('HTTP ' + r.status));
          e.code = j.error || String(r.status);
          throw e;
        }
        return j;
      });
    });
  }

  function say(button, text) {
    var id = button.getAttribute('data-status');
    var el = id ? document.getElementById(id) : null;
    if (el) {
      el.textContent = text;
    }
  }

  function done(button) {
    var to = button.getAttribute('data-return-to');
    window.location.assign(to || base + '/account');
  }

  function failed(button, e) {
    var text = e && e.name === 'NotAllowedError'
      ? 'The passkey was not used (cancelled or timed out).'
      : 'The passkey did not work: ' + (e && e.message ? e.message : 'unknown error') + '.';
    say(button, text);
    button.disabled = false;
    button.setAttribute('data-result', (e && (e.code || e.name)) || 'error');
  }

  function signIn(button) {
    return post('/v1/webauthn/login/start').then(function (c) {
      return navigator.credentials.get({ publicKey: requestOptions(c.publicKey) })
        .then(function (cred) {
          return post('/v1/webauthn/login/finish', {
            challenge_id: c.challenge_id,
            credential: assertionJson(cred),
            delivery: 'cookie'
          });
        });
    });
  }

  function secondStep(button) {
    var token = button.getAttribute('data-mfa-token');
    return post('/v1/login/mfa/webauthn', { mfa_token: token }).then(function (c) {
      return navigator.credentials.get({ publicKey: requestOptions(c.publicKey) })
        .then(function (cred) {
          return post('/v1/login/mfa', {
            mfa_token: token,
            method: 'webauthn',
            challenge_id: c.challenge_id,
            credential: assertionJson(cred),
            delivery: 'cookie'
          });
        });
    });
  }

  function register(button) {
    var form = button.form;
    var name = form && form.elements.name ? form.elements.name.value.trim() : '';
    if (!name) {
      return Promise.reject(new Error('give the passkey a name'));
    }
    return post('/account/passkeys/register/start', {}, true).then(function (c) {
      return navigator.credentials.create({ publicKey: creationOptions(c.publicKey) })
        .then(function (cred) {
          return post('/account/passkeys/register/finish', {
            challenge_id: c.challenge_id,
            name: name,
            credential: registrationJson(cred)
          }, true);
        });
    });
  }

  var actions = { 'sign-in': signIn, 'second-step': secondStep, register: register };

  document.addEventListener('click', function (ev) {
    var button = ev.target.closest ? ev.target.closest('[data-passkey]') : null;
    if (!button) {
      return;
    }
    ev.preventDefault();
    var action = actions[button.getAttribute('data-passkey')];
    if (!action) {
      return;
    }
    if (!window.PublicKeyCredential) {
      say(button, 'This browser has no passkeys.');
      return;
    }
    button.disabled = true;
    say(button, 'Waiting for the passkey…');
    action(button).then(function () {
      button.setAttribute('data-result', 'ok');
      if (button.getAttribute('data-passkey') === 'register') {
        window.location.reload();
      } else {
        done(button);
      }
    }, function (e) {
      failed(button, e);
    });
  });
})();
