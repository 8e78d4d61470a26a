// Draws every formula of the page with KaTeX, which the site carries (no network needed):
// $...$ and $$...$$ in the lessons, \(...\) and \[...\] where the Markdown pages put them.
renderMathInElement(document.body, {
  delimiters: [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "$", right: "$", display: false },
    { left: "\\(", right: "\\)", display: false },
  ],
  throwOnError: false, // a formula KaTeX cannot read shows in red (the browser test looks)
});
