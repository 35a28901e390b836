/* Draw the map data of a routing page with Leaflet. Text goes in as text nodes, never as HTML. */
(function () {
  "use strict";

  function textPopup(title, text) {
    var box = document.createElement("div");
    var strong = document.createElement("strong");
    strong.textContent = title || "";
    box.appendChild(strong);
    if (text) {
      box.appendChild(document.createElement("br"));
      box.appendChild(document.createTextNode(text));
    }
    return box;
  }

  function baseMap(element, tileLayers) {
    var map = L.map(element, {maxZoom: 18});
    tileLayers.forEach(function (layer) {
      L.tileLayer(layer.url, {attribution: layer.attribution, subdomains: layer.subdomains, maxZoom: 18}).addTo(map);
    });
    return map;
  }

  function drawPatrol(map, data) {
    // Vector layers need the map's final view before they are added, or the
    // SVG renderer clips them to the first view.
    var area = data.area ? L.geoJSON(JSON.parse(data.area), {style: {color: "#1565c0", weight: 2, fill: false, dashArray: "4"}}) : null;
    var bounds = L.latLngBounds([data.start, data.start]);
    if (area) {
      bounds.extend(area.getBounds());
    }
    data.path.forEach(function (point) { bounds.extend(point); });
    data.stops.forEach(function (stop) { bounds.extend([stop.lat, stop.lng]); });
    map.fitBounds(bounds.pad(0.05), {animate: false});

    if (area) {
      area.addTo(map);
    }
    if (data.path.length > 1) {
      L.polyline(data.path, {color: "#c62828", weight: 4, opacity: 0.8}).addTo(map);
    }
    L.circleMarker(data.start, {radius: 8, color: "#1b5e20", fillOpacity: 0.9}).bindPopup(textPopup(data.startTitle, "")).addTo(map);
    data.stops.forEach(function (stop) {
      var label = document.createElement("span");
      label.textContent = String(stop.sequence);
      var icon = L.divIcon({className: "route-marker", html: label, iconSize: [26, 26]});
      L.marker([stop.lat, stop.lng], {icon: icon, title: stop.title}).bindPopup(textPopup(stop.title, stop.text)).addTo(map);
    });
    data.unreachable.forEach(function (stop) {
      L.circleMarker([stop.lat, stop.lng], {radius: 6, color: "#616161", dashArray: "2"})
        .bindPopup(textPopup(stop.title, stop.text)).addTo(map);
    });
  }

  function drawCoverage(map, data, labels) {
    var extent = L.geoJSON(data.extent, {style: {color: "#424242", weight: 1, fill: false, dashArray: "4"}});
    // Vector layers need a map view before they are added.
    map.fitBounds(extent.getBounds().pad(0.05), {animate: false});
    extent.addTo(map);
    var isochrones = L.layerGroup(data.isochrones.map(function (item) {
      return L.geoJSON(item.geometry, {style: {color: "#2e7d32", weight: 1, fillOpacity: 0.25}})
        .bindPopup(textPopup(item.title, item.text));
    })).addTo(map);
    var outside = L.layerGroup(data.cells_outside.map(function (cell) {
      return L.polygon(cell.boundary, {color: "#ef6c00", weight: 1, fillOpacity: 0.35}).bindPopup(textPopup(cell.text, ""));
    })).addTo(map);
    var highRisk = L.layerGroup(data.high_risk.map(function (cell) {
      return L.polygon(cell.boundary, {color: "#b71c1c", weight: 3, fillOpacity: 0.5}).bindPopup(textPopup(cell.text, ""));
    })).addTo(map);
    var tickets = L.layerGroup(data.tickets_outside.map(function (point) {
      return L.circleMarker(point, {radius: 2, color: "#6a1b9a", weight: 1});
    }));
    var stations = L.layerGroup(data.stations.map(function (station) {
      return L.circleMarker([station.lat, station.lng], {radius: 7, color: "#0d47a1", fillOpacity: 0.9})
        .bindPopup(textPopup(station.title, station.text));
    })).addTo(map);
    var overlays = {};
    overlays[labels.isochrones] = isochrones;
    overlays[labels.outside] = outside;
    overlays[labels.highRisk] = highRisk;
    overlays[labels.tickets] = tickets;
    overlays[labels.stations] = stations;
    L.control.layers(null, overlays, {collapsed: false}).addTo(map);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("routing-map");
    if (!element) {
      return;
    }
    var data = JSON.parse(document.getElementById("routing-map-data").textContent);
    var tiles = JSON.parse(document.getElementById("routing-tile-layers").textContent);
    var labels = JSON.parse(document.getElementById("routing-map-labels").textContent);
    var map = baseMap(element, tiles);
    if (element.dataset.kind === "patrol") {
      data.startTitle = labels.start;
      drawPatrol(map, data);
    } else {
      drawCoverage(map, data, labels);
    }
    window.firegridRoutingMap = map;
  });
}());
