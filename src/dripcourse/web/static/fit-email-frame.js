// The lesson preview (admin_lesson.html): without this the frame is 900 px tall and the email
// scrolls inside it. The sandbox lets no script of the email run and no form be sent;
// allow-same-origin only lets this page measure it and keep a click on one of its links from
// opening that page inside the frame. A file of its own: the dashboard's pages run no inline script
// (see the Content-Security-Policy in web/dashboard.py).
document.querySelectorAll("iframe.email").forEach(function (frame) {
  function fit() {
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement || doc.URL !== "about:srcdoc") return;
    frame.style.height = doc.documentElement.scrollHeight + 2 + "px";
    if (doc.body && !doc.body.dataset.fitted) {
      doc.body.dataset.fitted = "1";
      doc.addEventListener("click", function (event) {
        if (event.target.closest && event.target.closest("a")) event.preventDefault();
      });
    }
  }
  frame.addEventListener("load", fit);
  fit();
});
