// Full-window stream view for an OBS Browser Source: the MJPEG stream scaled to fit, no controls.
"use strict";
(function () {
  const token = new URLSearchParams(location.search).get("token");
  const src = "/stream.mjpg" + (token ? "?token=" + encodeURIComponent(token) : "");
  const img = document.getElementById("stream");
  img.src = src;
  // if the stream ends (pipeline restarted), try again every two seconds
  img.addEventListener("error", () => setTimeout(() => { img.src = src + (token ? "&" : "?") + "r=" + Date.now(); }, 2000));
})();
