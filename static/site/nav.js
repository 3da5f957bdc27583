// The main menu on a phone: one "Menu" button beside the site's name instead of a nav
// that wraps onto a second line. Without JavaScript the nav stays as it is (it wraps);
// with it, the page's class has-nav-toggle lets site.css fold the nav behind the button
// below its breakpoint. The button says whether the menu is open (aria-expanded);
// Escape closes it and gives the focus back to the button.
const toggle = document.querySelector(".nav-toggle");
const nav = document.getElementById("main-nav");
if (toggle && nav) {
  const setOpen = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("is-open", open);
  };
  document.documentElement.classList.add("has-nav-toggle");
  toggle.hidden = false;
  toggle.addEventListener("click", () => setOpen(toggle.getAttribute("aria-expanded") !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && nav.classList.contains("is-open")) {
      setOpen(false);
      toggle.focus();
    }
  });
}
