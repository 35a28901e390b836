/* Daily inspection form that survives a poor connection.
 *
 * Every submitted form is first written to localStorage (the outbox) with a
 * UUID made on the phone, then sent. A form leaves the outbox only once the
 * server has replied with JSON: 201 (stored) or 200 (already stored under
 * that UUID), so a resend never creates a second inspection. Network errors
 * and non-JSON replies (an expired login) keep the form for the next try,
 * which happens when the browser reports the connection back, every 20
 * seconds, on page load and on the "send now" button. Replies with an error
 * message (bad input, not your building) stay listed until deleted.
 */
(function () {
  "use strict";

  var OUTBOX_KEY = "firegrid.inspection.outbox.v1";
  var RETRY_MS = 20000;
  var MAX_SIDE = 1600; // Maximum side in pixels of a stored photo, so that a few fit in localStorage.
  // NOTE: browsers give a site about 5 MB of localStorage (an estimate, it varies), so a handful of kept forms
  // with several photos can fill it. The page then says so and leaves the form filled. IndexedDB would hold more.

  var form = document.getElementById("inspection-form");
  if (!form) {
    return;
  }
  var statusBox = document.getElementById("inspection-status");
  var outbox = document.getElementById("inspection-outbox");
  var outboxList = document.getElementById("outbox-list");
  var sendButton = document.getElementById("outbox-send");
  var sending = false;

  function message(name) {
    return form.getAttribute("data-msg-" + name) || "";
  }

  function showStatus(text) {
    statusBox.textContent = text;
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // Plain-HTTP pages have no randomUUID, so build a version 4 UUID by hand.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  function readOutbox() {
    try {
      var records = JSON.parse(window.localStorage.getItem(OUTBOX_KEY) || "[]");
      return Array.isArray(records) ? records : [];
    } catch (error) {
      return [];
    }
  }

  function writeOutbox(records) {
    window.localStorage.setItem(OUTBOX_KEY, JSON.stringify(records));
  }

  function removeRecord(key) {
    writeOutbox(readOutbox().filter(function (record) { return record.client_key !== key; }));
  }

  function localTime(iso) {
    var moment = new Date(iso);
    function pad(number) { return (number < 10 ? "0" : "") + number; }
    return moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) + " " +
      pad(moment.getHours()) + ":" + pad(moment.getMinutes());
  }

  function renderOutbox() {
    var records = readOutbox();
    outbox.hidden = records.length === 0;
    outboxList.textContent = "";
    records.forEach(function (record) {
      var item = document.createElement("li");
      item.setAttribute("data-key", record.client_key);
      item.textContent = record.building_label + " · " + localTime(record.recorded_at) +
        " · " + (record.error ? message("rejected") + record.error : message("pending"));
      if (record.error) {
        var drop = document.createElement("button");
        drop.type = "button";
        drop.textContent = "×";
        drop.addEventListener("click", function () {
          removeRecord(record.client_key);
          renderOutbox();
        });
        item.appendChild(drop);
      }
      outboxList.appendChild(item);
    });
  }

  function readFile(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsDataURL(file);
    });
  }

  function shrink(dataUrl) {
    return new Promise(function (resolve) {
      var image = new Image();
      image.onload = function () {
        var scale = Math.min(1, MAX_SIDE / Math.max(image.width, image.height));
        if (scale === 1 && dataUrl.length < 1500000) {
          resolve(dataUrl);
          return;
        }
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(image.width * scale);
        canvas.height = Math.round(image.height * scale);
        canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
        resolve(canvas.toDataURL("image/jpeg", 0.8));
      };
      image.onerror = function () { resolve(dataUrl); };
      image.src = dataUrl;
    });
  }

  function toBlob(dataUrl) {
    var parts = dataUrl.split(",");
    var type = (parts[0].match(/^data:([^;]+)/) || [null, "application/octet-stream"])[1];
    var binary = window.atob(parts[1] || "");
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return new Blob([bytes], { type: type });
  }

  function collect() {
    var select = form.elements.building;
    var record = {
      client_key: newKey(),
      recorded_at: new Date().toISOString(),
      building: select.value,
      building_label: select.options[select.selectedIndex].text,
      items: {},
      note: form.elements.note.value,
      photos: [],
      error: ""
    };
    var complete = true;
    Array.prototype.forEach.call(form.querySelectorAll(".check-item"), function (block) {
      var name = block.getAttribute("data-item");
      var chosen = block.querySelector("input:checked");
      if (!chosen) {
        complete = false;
        return;
      }
      record.items[name] = chosen.value;
    });
    if (!complete || !record.building) {
      return Promise.reject(new Error(message("missing")));
    }
    var files = Array.prototype.slice.call(form.elements.photos.files || []);
    return Promise.all(files.map(function (file) {
      return readFile(file).then(shrink).then(function (data) {
        return { name: file.name || "photo.jpg", data: data };
      });
    })).then(function (photos) {
      record.photos = photos;
      return record;
    });
  }

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function sendOne(record) {
    var body = new FormData();
    body.append("client_key", record.client_key);
    body.append("recorded_at", record.recorded_at);
    body.append("building", record.building);
    body.append("note", record.note);
    Object.keys(record.items).forEach(function (name) {
      body.append("item_" + name, record.items[name]);
    });
    record.photos.forEach(function (photo) {
      body.append("photos", toBlob(photo.data), photo.name);
    });
    return fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") === -1) {
        // A login page or a proxy error: keep the form and try again later.
        throw new Error("HTTP " + response.status);
      }
      return response.json().then(function (reply) {
        return { status: response.status, reply: reply };
      });
    });
  }

  function flush() {
    if (sending) {
      return Promise.resolve();
    }
    var pending = readOutbox().filter(function (record) { return !record.error; });
    if (pending.length === 0) {
      renderOutbox();
      return Promise.resolve();
    }
    if (navigator.onLine === false) {
      showStatus(message("offline"));
      renderOutbox();
      return Promise.resolve();
    }
    sending = true;
    var chain = Promise.resolve();
    pending.forEach(function (record) {
      chain = chain.then(function () {
        return sendOne(record).then(function (result) {
          if (result.status === 200 || result.status === 201) {
            removeRecord(record.client_key);
            showStatus(result.status === 201 ? message("sent") : message("duplicate"));
          } else {
            var records = readOutbox();
            records.forEach(function (stored) {
              if (stored.client_key === record.client_key) {
                stored.error = result.reply.error || ("HTTP " + result.status);
              }
            });
            writeOutbox(records);
            showStatus(message("rejected") + (result.reply.error || result.status));
          }
        });
      });
    });
    return chain.catch(function () {
      showStatus(message("offline"));
    }).then(function () {
      sending = false;
      renderOutbox();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    collect().then(function (record) {
      var records = readOutbox();
      records.push(record);
      try {
        writeOutbox(records);
      } catch (error) {
        showStatus(message("storage"));
        return;
      }
      form.reset();
      showStatus(message("saved"));
      renderOutbox();
      flush();
    }, function (error) {
      showStatus(error.message);
    });
  });

  sendButton.addEventListener("click", function () { flush(); });
  window.addEventListener("online", function () { flush(); });
  window.setInterval(flush, RETRY_MS);
  renderOutbox();
  flush();
}());
