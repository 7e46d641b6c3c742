using System.Text;

namespace LuluClaw.Bench.Knowledge;

/// <summary>
/// English-like text: sentences of words drawn from a Zipf distribution (rank r has weight 1 / r^1.07)
/// over a vocabulary whose top ranks are real English function and common words, followed by a few
/// thousand made-up content words, so that full-text search sees common words matching most chunks
/// and rare words matching few, as in real prose.
/// </summary>
internal sealed class TextMaker
{
    private static readonly string[] Common =
    [
        "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "for", "was", "on", "are", "with", "as", "be", "this", "have", "from",
        "or", "by", "one", "had", "not", "but", "what", "all", "were", "when", "we", "there", "can", "an", "your", "which", "their", "if", "do", "will",
        "each", "about", "how", "up", "out", "them", "then", "she", "many", "some", "so", "these", "would", "other", "into", "has", "more", "her", "two", "like",
        "him", "see", "time", "could", "no", "make", "than", "first", "been", "its", "who", "now", "people", "my", "made", "over", "did", "down", "only", "way",
        "find", "use", "may", "water", "long", "little", "very", "after", "words", "called", "just", "where", "most", "know", "get", "through", "back", "much", "before", "go",
        "good", "new", "write", "our", "used", "me", "man", "too", "any", "day", "same", "right", "look", "think", "also", "around", "another", "came", "come", "work",
        "three", "word", "must", "because", "does", "part", "even", "place", "well", "such", "here", "take", "why", "things", "help", "put", "years", "different", "away", "again",
        "off", "went", "old", "number", "great", "tell", "men", "say", "small", "every", "found", "still", "between", "name", "should", "home", "big", "give", "air", "line",
        "set", "own", "under", "read", "last", "never", "us", "left", "end", "along", "while", "might", "next", "sound", "below", "saw", "something", "thought", "both", "few",
        "account", "order", "payment", "delivery", "warranty", "refund", "customer", "service", "product", "price", "support", "device", "battery", "setting", "update", "invoice",
    ];

    private static readonly string[] Syllables =
    [
        "ba", "ro", "ten", "mi", "lar", "sto", "ve", "dex", "qua", "nor", "pli", "sen", "tor", "gal", "fen", "mu", "cra", "zo", "lin", "per",
        "dra", "ki", "mon", "sa", "tri", "vel", "ho", "rin", "pas", "cu",
    ];

    private readonly string[] _words;
    private readonly double[] _cumulative;

    public TextMaker(int seed)
    {
        var random = new Random(seed);
        var made = new HashSet<string>(Common, StringComparer.Ordinal);
        var words = new List<string>(Common);
        while (words.Count < 6000)
        {
            var word = string.Concat(Enumerable.Range(0, random.Next(2, 5)).Select(_ => Syllables[random.Next(Syllables.Length)]));
            if (made.Add(word))
            {
                words.Add(word);
            }
        }

        _words = [.. words];
        _cumulative = new double[_words.Length];
        var total = 0.0;
        for (var rank = 0; rank < _words.Length; rank++)
        {
            total += 1 / Math.Pow(rank + 1, 1.07);
            _cumulative[rank] = total;
        }
    }

    /// <summary>A word by its Zipf weight.</summary>
    public string Word(Random random)
    {
        var at = Array.BinarySearch(_cumulative, random.NextDouble() * _cumulative[^1]);
        return _words[Math.Min(at < 0 ? ~at : at, _words.Length - 1)];
    }

    /// <summary>A content word: past the most common 120 ranks (which are mostly function words).</summary>
    public string ContentWord(Random random)
    {
        while (true)
        {
            var word = Word(random);
            if (Array.IndexOf(Common, word) is < 0 or >= 120)
            {
                return word;
            }
        }
    }

    public string Sentence(Random random)
    {
        var words = Enumerable.Range(0, random.Next(8, 21)).Select(_ => Word(random)).ToArray();
        words[0] = char.ToUpperInvariant(words[0][0]) + words[0][1..];
        return string.Join(' ', words) + ".";
    }

    /// <summary>Sentences until at least <paramref name="minWords"/> words (at most about <paramref name="maxWords"/>).</summary>
    public string Paragraph(Random random, int minWords, int maxWords)
    {
        var text = new StringBuilder();
        var words = 0;
        var target = random.Next(minWords, maxWords + 1);
        while (words < target)
        {
            var sentence = Sentence(random);
            words += sentence.Count(c => c == ' ') + 1;
            text.Append(text.Length == 0 ? "" : " ").Append(sentence);
        }

        return text.ToString();
    }

    public string Title(Random random)
    {
        var words = Enumerable.Range(0, random.Next(2, 5)).Select(_ => ContentWord(random)).Select(w => char.ToUpperInvariant(w[0]) + w[1..]);
        return string.Join(' ', words);
    }

    /// <summary>A question as a user would ask one: a few function words around two or three content words.</summary>
    public string Question(Random random)
    {
        string[] openings = ["How do I", "What is the", "Can you tell me about the", "Why does my", "Where can I find the", "When will the"];
        var content = string.Join(' ', Enumerable.Range(0, random.Next(2, 4)).Select(_ => ContentWord(random)));
        return $"{openings[random.Next(openings.Length)]} {content}?";
    }
}
