using System.Text;
using LuluClaw.Silo.Knowledge;
using UglyToad.PdfPig.Content;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>What ingestion reads of HTML, Markdown, PDF and text.</summary>
public sealed class DocumentTextTests
{
    [Fact]
    public void Html_KeepsTheContentInSectionsUnderItsHeadings_AndDropsScriptsStylesAndPageChrome()
    {
        const string html = """
            <html><head><title>Widget help</title><style>.x{color:red}</style><script>var secret = 1;</script></head>
            <body><nav><a href="/">Home</a> | <a href="/buy">Buy</a></nav><header>Site header</header>
            <h1>Widgets</h1><p>Widgets are blue.</p><div hidden>Hidden text</div>
            <h2>Shipping</h2><p>We ship in <b>three</b> days.</p><ul><li>Europe</li><li>Asia</li></ul>
            <footer>Copyright footer</footer></body></html>
            """;

        var document = DocumentText.Extract(Encoding.UTF8.GetBytes(html), "text/html");

        Assert.Equal("Widget help", document.Title);
        Assert.Equal(["Widgets", "Shipping"], document.Sections.Select(s => s.Heading));
        Assert.Equal("Widgets are blue.", document.Sections[0].Text);
        Assert.Contains("We ship in three days.", document.Sections[1].Text);
        Assert.Contains("Asia", document.Sections[1].Text);
        foreach (var chrome in new[] { "secret", "color", "Home", "Site header", "Copyright", "Hidden" })
        {
            Assert.DoesNotContain(chrome, DocumentText.Flatten(document));
        }
    }

    [Fact]
    public void Markdown_SplitsAtHeadings_AndReducesMarkupToText()
    {
        var document = DocumentText.Extract("# Guide\nRead **this** first.\n\n## Links\nSee [the docs](https://x.example/docs) and `code`.\n"u8.ToArray(), "text/markdown");

        Assert.Equal("Guide", document.Title);
        Assert.Equal([("Guide", "Read this first."), ("Links", "See the docs and code.")], document.Sections.Select(s => (s.Heading, s.Text)));
    }

    [Fact]
    public void Pdf_IsASectionPerPageWithText()
    {
        var builder = new PdfDocumentBuilder();
        var font = builder.AddStandard14Font(Standard14Font.Helvetica);
        builder.AddPage(PageSize.A4).AddText("The Zorbulator warranty lasts seven years.", 12, new PdfPoint(50, 700), font);
        builder.AddPage(PageSize.A4).AddText("Returns are accepted within 30 days.", 12, new PdfPoint(50, 700), font);

        var document = DocumentText.Extract(builder.Build(), "application/pdf");

        Assert.Equal(["Page 1", "Page 2"], document.Sections.Select(s => s.Heading));
        Assert.Equal("The Zorbulator warranty lasts seven years.", document.Sections[0].Text);
        Assert.Equal("Returns are accepted within 30 days.", document.Sections[1].Text);
    }

    [Fact]
    public void APdfWithoutText_OrNotAPdf_IsInvalidData_WithAReasonAPersonCanActOn()
    {
        var builder = new PdfDocumentBuilder();
        builder.AddPage(PageSize.A4);

        var empty = Assert.Throws<InvalidDataException>(() => DocumentText.Extract(builder.Build(), "application/pdf"));
        var broken = Assert.Throws<InvalidDataException>(() => DocumentText.Extract("%PDF-1.4 garbage"u8.ToArray(), "application/pdf"));

        Assert.Contains("no text layer", empty.Message);
        Assert.Contains("is not a readable PDF", broken.Message);
    }
}
