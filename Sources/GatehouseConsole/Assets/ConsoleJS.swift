/// The console's one script: small enhancements only, every page works without it. It shows
/// times in the browser's time zone and submits a filter form when a select marked
/// `data-autosubmit` changes. (No inline handlers: the CSP refuses them.)
enum ConsoleJS {
    static let text = """
        "use strict";
        document.addEventListener("DOMContentLoaded", function () {
          document.querySelectorAll("time[datetime]").forEach(function (el) {
            var d = new Date(el.getAttribute("datetime"));
            if (!isNaN(d.getTime())) { el.title = el.textContent; el.textContent = d.toLocaleString(); }
          });
          document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
            el.addEventListener("change", function () { if (el.form) { el.form.submit(); } });
          });
        });
        """
}
