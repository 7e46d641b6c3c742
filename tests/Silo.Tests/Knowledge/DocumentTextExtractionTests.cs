using System.Text;
using LuluClaw.Silo.Knowledge;
using UglyToad.PdfPig.Content;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>The text each kind of document yields: every dropped HTML element, titles, setext headings, code, plain text, PDF pages and empty documents.</summary>
public sealed class DocumentTextExtractionTests
{
    [Fact]
    public void Extract_Html_DropsChromeAndSplitsAtHeadings()
    {
        const string html = """
            <html><head><title>The Guide</title><style>p { color: red }</style>
            <script>var secret = "script text";</script></head>
            <body>
              <header>Site header</header>
              <nav><a href="/">Home navigation</a></nav>
              <p>Intro   before
                 any heading.</p>
              <h1>Getting started</h1>
              <p>First paragraph.</p><p>Second <b>bold</b> paragraph.</p>
              <div hidden>hidden div</div><span style="display: none">invisible span</span>
              <h2>Details</h2>
              <ul><li>one</li><li>two</li></ul>
              <noscript>enable js</noscript><form><input value="form field">form text</form>
              <aside>aside text</aside><svg><text>svg text</text></svg>
              <footer>Footer text</footer>
            </body></html>
            """;

        var document = DocumentText.Extract(Encoding.UTF8.GetBytes(html), DocumentText.Html);

        Assert.Equal("The Guide", document.Title);
        Assert.Equal([null, "Getting started", "Details"], document.Sections.Select(s => s.Heading));
        Assert.Equal("Intro before any heading.", document.Sections[0].Text);
        Assert.Equal("First paragraph.\n\nSecond bold paragraph.", document.Sections[1].Text);
        Assert.Equal("one\n\ntwo", document.Sections[2].Text);
        var all = string.Join(' ', document.Sections.Select(s => s.Text));
        foreach (var dropped in new[] { "script text", "color", "Site header", "navigation", "hidden div", "invisible span", "enable js", "form text", "aside text", "svg text", "Footer text" })
        {
            Assert.DoesNotContain(dropped, all, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Extract_HtmlWithoutTitle_TitleFromFirstH1()
    {
        var document = DocumentText.Extract("<body><h1>Heading One</h1><p>Body.</p></body>"u8.ToArray(), DocumentText.Html);

        Assert.Equal("Heading One", document.Title);
    }

    [Fact]
    public void Extract_Markdown_SplitsAtHeadingsAndReducesMarkup()
    {
        const string markdown = """
            # Manual

            Read **this** and `that`, see [the docs](https://example.com/docs) and ![a logo](logo.png).

            ## Install
            - run _setup_ now
            - keep snake_case_names

            #### Small heading stays text

            ```
            code line
            ```

            Setext section
            --------------
            Text under setext.
            """;

        var document = DocumentText.Extract(Encoding.UTF8.GetBytes(markdown), DocumentText.Markdown);

        Assert.Equal("Manual", document.Title);
        Assert.Equal(["Manual", "Install", "Setext section"], document.Sections.Select(s => s.Heading));
        Assert.Equal("Read this and that, see the docs and a logo.", document.Sections[0].Text);
        Assert.Equal("run setup now\nkeep snake_case_names\n\nSmall heading stays text\n\ncode line", document.Sections[1].Text);
        Assert.Equal("Text under setext.", document.Sections[2].Text);
    }

    [Fact]
    public void Extract_PlainText_OneSectionParagraphsKept()
    {
        var bytes = Encoding.UTF8.GetBytes("\uFEFFFirst   line\r\nsecond line\r\n\r\n\r\n\tNext paragraph.  ");

        var document = DocumentText.Extract(bytes, DocumentText.PlainText);

        var section = Assert.Single(document.Sections);
        Assert.Null(section.Heading);
        Assert.Equal("First line\nsecond line\n\nNext paragraph.", section.Text);
    }

    [Theory]
    [InlineData("text/plain", " \n\t \r\n ")]
    [InlineData("text/markdown", "# \n---\n")]
    [InlineData("text/html", "<html><body><nav>only nav</nav><script>x()</script></body></html>")]
    public void Extract_NoText_ThrowsInvalidData(string mediaType, string content)
    {
        Assert.Throws<InvalidDataException>(() => DocumentText.Extract(Encoding.UTF8.GetBytes(content), mediaType));
    }

    [Fact]
    public void Extract_TwoPagePdf_OneSectionPerPage()
    {
        var pdf = BuildPdf(
            ["Introduction", "The first page explains the product."],
            ["the second page has no title line, only a sentence that runs on."]);

        var document = DocumentText.Extract(pdf, DocumentText.Pdf);

        Assert.Equal(["Introduction", "Page 2"], document.Sections.Select(s => s.Heading));
        Assert.Contains("The first page explains the product.", document.Sections[0].Text, StringComparison.Ordinal);
        Assert.Contains("the second page has no title line", document.Sections[1].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Extract_PdfWithoutText_ThrowsInvalidDataNamingTheTextLayer()
    {
        var builder = new PdfDocumentBuilder();
        var page = builder.AddPage(PageSize.A4);
        page.DrawRectangle(new PdfPoint(50, 50), 200, 100);
        var pdf = builder.Build();

        var error = Assert.Throws<InvalidDataException>(() => DocumentText.Extract(pdf, DocumentText.Pdf));

        Assert.Contains("no text layer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Extract_DamagedPdf_ThrowsInvalidData()
    {
        Assert.Throws<InvalidDataException>(() => DocumentText.Extract("%PDF-1.7\nnot a pdf at all"u8.ToArray(), DocumentText.Pdf));
    }

    /// <summary>A PDF whose pages each hold the given lines, top to bottom, in Helvetica.</summary>
    private static byte[] BuildPdf(params string[][] pages)
    {
        var builder = new PdfDocumentBuilder();
        var font = builder.AddStandard14Font(Standard14Font.Helvetica);
        foreach (var lines in pages)
        {
            var page = builder.AddPage(PageSize.A4);
            var y = 750.0;
            foreach (var line in lines)
            {
                page.AddText(line, 12, new PdfPoint(50, y), font);
                y -= 20;
            }
        }

        return builder.Build();
    }
}
